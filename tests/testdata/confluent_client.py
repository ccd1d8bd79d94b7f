"""Confluent's own Python client and serializers (confluent-kafka from PyPI) against enricher.

The system test TestConfluentPythonClient runs it in two steps:

  confluent_client.py produce BROKERS REGISTRY INPUT SCORES ORDER_SCHEMA_FILE
      writes 30 orders (customers c0..c9) and scores for c0..c6, Avro with Confluent's
      AvroSerializer (which registers the schemas under <topic>-value), keys with its
      StringSerializer, and prints the orders it wrote as JSON lines
  confluent_client.py consume BROKERS REGISTRY OUTPUT COUNT
      reads COUNT outputs with Confluent's AvroDeserializer (the writer schema fetched by the ID
      in each record) and prints each as a JSON line: the key and the decoded record
"""

import json
import sys

from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext, StringSerializer

# REGISTRY_TIMEOUT bounds each request to the registry, in seconds. The client's default is
# none: a request the registry never answers would hang the test; the client retries one that
# times out.
REGISTRY_TIMEOUT = 10

TIER_SCHEMA = """{"type": "record", "name": "Tier", "namespace": "shop",
 "fields": [{"name": "customer", "type": "string"}, {"name": "score", "type": "long"}]}"""


def produce(brokers, registry, input_topic, scores_topic, order_schema_file):
    client = SchemaRegistryClient({"url": registry, "timeout": REGISTRY_TIMEOUT})
    with open(order_schema_file) as f:
        orders = AvroSerializer(client, f.read())
    tiers = AvroSerializer(client, TIER_SCHEMA)
    keys = StringSerializer("utf_8")
    producer = Producer({"bootstrap.servers": brokers, "enable.idempotence": True})
    failed = []

    def delivered(err, _msg):
        if err is not None:
            failed.append(err)

    for c in range(7):
        customer = f"c{c}"
        value = tiers({"customer": customer, "score": 100 + c}, SerializationContext(scores_topic, MessageField.VALUE))
        producer.produce(scores_topic, key=keys(customer), value=value, on_delivery=delivered)
    producer.flush(30)
    for i in range(30):
        order = {"id": f"o{i}", "customer": f"c{i % 10}", "amount": i + 0.25, "note": None if i % 2 else "gift",
                 "lines": [{"sku": f"s{i}", "qty": i % 5}]}
        value = orders(order, SerializationContext(input_topic, MessageField.VALUE))
        producer.produce(input_topic, key=keys(order["customer"]), value=value, on_delivery=delivered)
        print(json.dumps(order), flush=True)
    if producer.flush(30) or failed:
        sys.exit(f"produce failed: {failed or 'records left unsent'}")


def consume(brokers, registry, output_topic, count):
    client = SchemaRegistryClient({"url": registry, "timeout": REGISTRY_TIMEOUT})
    outputs = AvroDeserializer(client)
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": f"{output_topic}-python",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([output_topic])
    seen = 0
    idle = 0
    while seen < count and idle < 120:
        msg = consumer.poll(1.0)
        if msg is None:
            idle += 1
            continue
        if msg.error():
            sys.exit(f"consume failed: {msg.error()}")
        record = outputs(msg.value(), SerializationContext(output_topic, MessageField.VALUE))
        print(json.dumps({"key": msg.key().decode(), "value": record}), flush=True)
        seen += 1
    consumer.close()
    if seen < count:
        sys.exit(f"read {seen} of {count} outputs")


if __name__ == "__main__":
    if sys.argv[1:2] == ["produce"] and len(sys.argv) == 7:
        produce(*sys.argv[2:])
    elif sys.argv[1:2] == ["consume"] and len(sys.argv) == 6:
        consume(*sys.argv[2:5], int(sys.argv[5]))
    else:
        sys.exit(__doc__)
