# SPDX-License-Identifier: LGPL-2.1-or-later
"""What CPU a benchmark ran on, read from /proc/cpuinfo, for the first line of
every benchmark's output: figures from different CPUs are not comparable."""

SIMD_FLAGS = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_bf16",
              "avx512_vnni", "amx_bf16", "amx_int8"]


def _cpuinfo():
    """(model name with family and model number, flags): a virtual machine's
    "AMD EPYC" is Zen 3 (family 25) or Zen 5 (family 26), and they differ."""
    model, flags, ids = "unknown CPU", set(), {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and model == "unknown CPU":
                model = value.strip()
            elif key in ("cpu family", "model") and key not in ids:
                ids[key] = value.strip()
            elif key == "flags" and not flags:
                flags = set(value.split())
    if ids:
        model += f" (family {ids.get('cpu family', '?')}, model {ids.get('model', '?')})"
    return model, flags


def native_bf16():
    """As the embedder decides (engine/base/cpu_features.cpp), read independently."""
    _, flags = _cpuinfo()
    return bool(flags & {"avx512_bf16", "amx_bf16"}) and {"avx512bw", "avx512vl",
                                                          "avx512dq"} <= flags


def describe():
    import os
    model, flags = _cpuinfo()
    have = [f for f in SIMD_FLAGS if f in flags]
    return (f"CPU: {model}, {os.cpu_count()} cores; {' '.join(have) or 'no AVX2'}; "
            f"native bf16: {'yes' if native_bf16() else 'no (precision=bf16 runs as fp32)'}")
