"""The safetensors format by hand (no safetensors package in Debian): 8-byte little-endian header length,
JSON header {name: {dtype, shape, data_offsets}}, then raw little-endian data. src/safetensors.ts reads it."""
import json
import struct

import numpy as np

DTYPES = {np.dtype('float32'): 'F32', np.dtype('float64'): 'F64', np.dtype('int64'): 'I64'}
NP = {v: k for k, v in DTYPES.items()}


def write_safetensors(path, tensors, metadata=None):
    """tensors: ordered {name: np.ndarray}; the order is kept, so reruns write identical bytes."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header['__metadata__'] = metadata
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        if a.dtype not in DTYPES:
            raise ValueError(f'{name}: unsupported dtype {a.dtype}')
        data = a.astype(a.dtype.newbyteorder('<'), copy=False).tobytes()
        header[name] = {'dtype': DTYPES[a.dtype], 'shape': list(a.shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(',', ':'))
    head += ' ' * ((8 - len(head) % 8) % 8)  # keeps the data 8-byte aligned
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(head)))
        f.write(head.encode('utf-8'))
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, 'rb') as f:
        buf = f.read()
    (n,) = struct.unpack('<Q', buf[:8])
    header = json.loads(buf[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == '__metadata__':
            continue
        s, t = e['data_offsets']
        out[name] = np.frombuffer(buf[8 + n + s:8 + n + t], dtype=NP[e['dtype']]).reshape(e['shape'])
    return out
