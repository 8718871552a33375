"""The instruction set an int8 variant is built for, and the weight range that follows from it.

On x86 without VNNI, ONNX Runtime's MLAS multiplies uint8 activations by int8 weights with
``vpmaddubsw``, which adds two u8*s8 products into a *saturating* int16: 255*127*2 > 32767. Full
8-bit weights then overflow, so int8 weights must use 7 bits (``reduce_range``). Intel documents
this for VNNI-less CPUs (Intel 64 and IA-32 Architectures SDM, PMADDUBSW; ONNX Runtime docs,
"Quantize ONNX models", section "When and why do I need to try U8U8?" / reduce_range), and
Intel Neural Compressor sets ``reduce_range = not VNNI`` when it builds on such a host. With VNNI
(``vpdpbusd``, 32-bit accumulation) and on ARM (``sdot``/``udot``) 8-bit weights are exact.

So an int8 variant is tied to the ISA it was built for:
  * its record holds ``target_isa`` and ``weight_bits`` and the cache key includes both;
  * a variant built for VNNI (8-bit weights) running on an AVX2 host gets a warning from
    ``isa_mismatch_warning`` (the output-parity check then decides whether it is still right).
"""
from __future__ import annotations

from typing import Iterable, Literal

from odbench.devices.host import detect_host

Int8Isa = Literal["x86-vnni", "x86-avx2", "arm"]
INT8_ISAS: tuple[str, ...] = ("x86-vnni", "x86-avx2", "arm")

_VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def int8_isa(isa_flags: Iterable[str], arch: str = "x86_64") -> str:
    """The int8 kernel class of a CPU, from its ISA flags (as devices.host lists them)."""
    if arch in ("aarch64", "armv7l", "arm64"):
        return "arm"
    flags = {f.lower() for f in isa_flags}
    return "x86-vnni" if flags & set(_VNNI_FLAGS) else "x86-avx2"


def host_int8_isa() -> str:
    host = detect_host()
    return int8_isa(host.isa, host.arch)


def resolve_target(target_isa: str) -> str:
    """``"host"`` -> this machine's int8 class; otherwise checked against INT8_ISAS."""
    if target_isa == "host":
        return host_int8_isa()
    if target_isa not in INT8_ISAS:
        raise ValueError(f"unknown int8 target ISA {target_isa!r}; known: host, {', '.join(INT8_ISAS)}")
    return target_isa


def weight_bits_for(target: str) -> int:
    """7-bit weights where u8*s8 pairs saturate (x86 without VNNI), else 8 (INC: reduce_range = not VNNI)."""
    return 7 if target == "x86-avx2" else 8


def isa_mismatch_warning(variant, host_isa: str) -> str | None:
    """A one-line warning when an int8 ``variant`` was built for another ISA than ``host_isa``
    (an int8 class from ``int8_isa``, or raw flags joined by spaces/commas); None when it fits
    or the variant records no ISA (fp32 and non-int8 variants)."""
    config = getattr(variant, "config", None) or {}
    built_for = config.get("target_isa")
    if not built_for:
        return None
    host = host_isa if host_isa in INT8_ISAS else int8_isa(host_isa.replace(",", " ").split())
    if built_for == host:
        return None
    bits = config.get("weight_bits")
    risk = ""
    if host == "x86-avx2" and bits == 8 and config.get("symmetric", True):
        risk = ": its 8-bit weights can saturate int16 accumulation in ONNX Runtime's AVX2 int8 kernels (wrong outputs)"
    elif built_for == "x86-avx2":
        risk = ": its 7-bit weights lose precision that this CPU would not need to give up (rebuild for it)"
    return f"{variant.id} was built for {built_for} ({bits}-bit weights) but runs on {host}{risk}; output parity decides"
