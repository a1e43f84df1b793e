#!/usr/bin/env python3
"""Interop helper for schema's tests: Apache Avro's Python library reads and
writes schemaless datums, as openedx-events' serializer does with fastavro.

  avro_interop.py decode SCHEMA.avsc   stdin: JSON list of hex datums   stdout: JSON list of values
  avro_interop.py encode SCHEMA.avsc   stdin: JSON list of values       stdout: JSON list of hex datums
  avro_interop.py resolve              stdin: JSON list of {"writer", "reader", "hex"}
                                       stdout: JSON list of hex: each datum read with writer
                                       resolved to reader, then written with reader
"""
import io
import json
import sys

import avro.io
import avro.schema


def resolve(items):
    out = []
    for item in items:
        writer = avro.schema.parse(item["writer"])
        reader = avro.schema.parse(item["reader"])
        value = avro.io.DatumReader(writer, reader).read(
            avro.io.BinaryDecoder(io.BytesIO(bytes.fromhex(item["hex"]))))
        buf = io.BytesIO()
        avro.io.DatumWriter(reader).write(value, avro.io.BinaryEncoder(buf))
        out.append(buf.getvalue().hex())
    return out


def main():
    if sys.argv[1] == "resolve":
        json.dump(resolve(json.load(sys.stdin)), sys.stdout)
        return
    mode, schema_path = sys.argv[1], sys.argv[2]
    with open(schema_path, encoding="utf-8") as f:
        schema = avro.schema.parse(f.read())
    items = json.load(sys.stdin)
    out = []
    if mode == "decode":
        reader = avro.io.DatumReader(schema)
        for h in items:
            buf = io.BytesIO(bytes.fromhex(h))
            value = reader.read(avro.io.BinaryDecoder(buf))
            if buf.read(1):
                raise SystemExit("trailing bytes after datum")
            out.append(value)
    elif mode == "encode":
        writer = avro.io.DatumWriter(schema)
        for value in items:
            buf = io.BytesIO()
            writer.write(value, avro.io.BinaryEncoder(buf))
            out.append(buf.getvalue().hex())
    else:
        raise SystemExit("unknown mode " + mode)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
