#!/usr/bin/env python3
"""Writes one mlp_256 request (256 FP32, shape [1,256], values i/256) in two
forms: a length-prefixed gRPC ModelInferRequest with raw_input_contents
(for h2load) and an HTTP binary-extension body (for wrk), plus the JSON
header's length. Protobuf is encoded by hand (fields of Triton's
grpc_service.proto: ModelInferRequest model_name=1, inputs=5,
raw_input_contents=7; InferInputTensor name=1, datatype=2, shape=3 packed)
so that no protobuf package is needed."""
import struct, sys

out = sys.argv[1] if len(sys.argv) > 1 else "."

def varint(n):
    b = bytearray()
    while True:
        x = n & 0x7F
        n >>= 7
        if n:
            b.append(x | 0x80)
        else:
            b.append(x)
            return bytes(b)

def field(num, payload):  # length-delimited
    return varint(num << 3 | 2) + varint(len(payload)) + payload

raw = b"".join(struct.pack("<f", i / 256) for i in range(256))
tensor = field(1, b"input") + field(2, b"FP32") + field(3, varint(1) + varint(256))
msg = field(1, b"mlp_256") + field(5, tensor) + field(7, raw)
open(f"{out}/grpc.bin", "wb").write(b"\0" + struct.pack(">I", len(msg)) + msg)
header = b'{"inputs":[{"name":"input","datatype":"FP32","shape":[1,256],"parameters":{"binary_data_size":1024}}]}'
open(f"{out}/http.bin", "wb").write(header + raw)
open(f"{out}/header-length", "w").write(str(len(header)))
