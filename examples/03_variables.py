"""Variables: PLAIN, SPLICE and LAZY values, and node outputs flowing between nodes.

The pipeline context holds:

- ${customer}: PLAIN "ada lovelace" (stored and returned verbatim);
- ${greeting}: SPLICE "Hello, ${customer.title()}!" (a template rendered when a node needs it);
- ${order_id} and ${total}: node outputs, filled from the outputs of the "create order" node
  when it finishes.

"create order" computes an order id and a total; "notify" then receives a SPLICE input built from
${greeting} and ${order_id}, and a LAZY input whose value is handed to this script's LazyVariable
"shout" (upper-cases it). The pipeline exports ${order_id} and ${total} as its outputs.

Run it: python examples/03_variables.py
"""

from __future__ import annotations

import os
import sys
import tempfile

import rattan
from rattan import api
from rattan.builder import Data, EmptyEndEvent, EmptyStartEvent, NodeOutput, ServiceActivity, Var, build_tree

registry = rattan.Registry("example-variables")


class CreateOrderService(rattan.Service):
    def execute(self, data: rattan.DataObject, parent_data: rattan.DataObject) -> bool:
        items: list[int] = data.get_one_of_inputs("prices")
        data.set_outputs("order_id", f"ORD-{len(items)}{sum(items)}")
        data.set_outputs("total", sum(items))
        return True


class NotifyService(rattan.Service):
    def execute(self, data: rattan.DataObject, parent_data: rattan.DataObject) -> bool:
        data.set_outputs("sent", f"{data.get_one_of_inputs('message')} [{data.get_one_of_inputs('tag')}]")
        return True


class CreateOrderComponent(rattan.Component, registry=registry):
    name = code = "create_order"
    bound_service = CreateOrderService


class NotifyComponent(rattan.Component, registry=registry):
    name = code = "notify"
    bound_service = NotifyService


class Shout(rattan.LazyVariable, registry=registry):
    code = "shout"

    def get_value(self) -> str:
        return str(self.value).upper()


def main() -> int:
    start, end = EmptyStartEvent(), EmptyEndEvent()
    create = ServiceActivity(component_code="create_order", name="create order")
    create.component.inputs.prices = Var(type=Var.PLAIN, value=[12, 30])
    notify = ServiceActivity(component_code="notify", name="notify")
    notify.component.inputs.message = Var(
        type=Var.SPLICE, value="${greeting} Order ${order_id}: ${total} EUR."
    )
    notify.component.inputs.tag = Var(type=Var.LAZY, custom_type="shout", value="${customer.split()[0]}")
    start.extend(create).extend(notify).extend(end)

    data = Data(
        inputs={
            "${customer}": Var(type=Var.PLAIN, value="ada lovelace"),
            "${greeting}": Var(type=Var.SPLICE, value="Hello, ${customer.title()}!"),
            "${order_id}": NodeOutput(source_act=create.id, source_key="order_id"),
            "${total}": NodeOutput(source_act=create.id, source_key="total"),
        },
        outputs=["${order_id}", "${total}"],
    )
    tree = build_tree(start, data=data)

    with (
        tempfile.TemporaryDirectory() as folder,
        rattan.Engine(os.path.join(folder, "variables.db"), components=registry) as engine,
    ):
        assert api.run_pipeline(engine, tree).result
        state = engine.wait_pipeline(tree["id"], timeout=30)["state"]
        created = api.get_execution_data_outputs(engine, create.id).data
        notified = api.get_execution_data(engine, notify.id).data
        exported = api.get_execution_data_outputs(engine, tree["id"]).data

    print(f"pipeline {state}")
    print(f"create order outputs: order_id={created['order_id']!r} total={created['total']!r}")
    print(f"notify input message: {notified['inputs']['message']}")
    print(f"notify input tag (LAZY): {notified['inputs']['tag']}")
    print(f"notify output sent: {notified['outputs']['sent']}")
    print(f"pipeline outputs: {dict(sorted(exported.items()))}")

    ok = (
        state == "FINISHED"
        and notified["inputs"]["message"] == "Hello, Ada Lovelace! Order ORD-242: 42 EUR."
        and notified["inputs"]["tag"] == "ADA"
        and exported == {"${order_id}": "ORD-242", "${total}": 42}
    )
    print("OK" if ok else "UNEXPECTED OUTCOME")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
