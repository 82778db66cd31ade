"""Consume order events and write them to Postgres: one loop commits first, one after."""
import json

import psycopg
from kafka import KafkaConsumer


def consume_at_most_once(dsn: str) -> None:
    consumer = KafkaConsumer("orders", group_id="loader", enable_auto_commit=False)
    with psycopg.connect(dsn) as conn:
        for msg in consumer:
            consumer.commit()  # expect: IDM405
            row = json.loads(msg.value)
            conn.execute(
                "INSERT INTO orders (id, amount) VALUES (%(id)s, %(amount)s) "
                "ON CONFLICT (id) DO UPDATE SET amount = EXCLUDED.amount", row)
            conn.commit()


def consume_at_least_once(dsn: str) -> None:
    consumer = KafkaConsumer("orders", group_id="loader", enable_auto_commit=False)
    with psycopg.connect(dsn) as conn:
        for msg in consumer:
            row = json.loads(msg.value)
            conn.execute(
                "INSERT INTO orders (id, amount) VALUES (%(id)s, %(amount)s) "
                "ON CONFLICT (id) DO UPDATE SET amount = EXCLUDED.amount", row)
            conn.commit()
            consumer.commit()
