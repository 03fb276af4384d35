r"""Block-wise quantized moments: 8-bit and 4-bit storage for any moment of any optimizer.

`gradxform.quantized(bits, block_size)` is a storage spec, accepted wherever a moment's dtype is
(`mu_dtype`, `nu_dtype`, `state_dtype`, ...). A moment stored so is a `Quantized` pytree node: integer
codes (one byte per element at 8 bits, two elements per byte at 4) and one float32 scale per block.

**Blocks.** A block is `block_size` consecutive entries along the parameter's last axis (the whole axis
when it is shorter; the last block of a row may be partial); its float32 scale $s$ is its largest
magnitude $\max_{i \in \text{block}} |x_i|$ rounded up: to a power of two for the 8-bit codes (float
codes, whose relative spacing is the same in every binade, so this costs only part of the top binade),
to 7 mantissa bits for the 4-bit ones (16 levels: none may go unused). The scales have shape
`shape[:-1] + (ceil(n / block_size),)`.
Blocks along the last axis never straddle a shard of the parameter as long as `block_size` divides the
per-device length of that axis (`gradxform.distributed.state_sharding` checks it), and the codes and
scales are then sharded like the parameter, each device quantizing its own blocks.

**Codes.** Each entry is stored as the code $k$ nearest to $x_i / s$ (round to nearest, ties to even),
and read back as $s\,v_k$. The code tables $v_k$ are closed-form (bit arithmetic on float32, no table
look-up or search):

* signed moments ($\mu$, momentum): a sign bit and a small floating-point format, the dynamic
  (exponent-based) code of Dettmers et al. (2022), "8-bit Optimizers via Block-wise Quantization":
  8 bits: 4 exponent and 3 mantissa bits (relative spacing $2^{-3}$, range $\approx 4 \cdot 10^{-6}$ of the
  block's maximum); 4 bits: 2 exponent and 1 mantissa bit ($\{0, \tfrac1{12}, \tfrac16, \tfrac14, \tfrac13,
  \tfrac12, \tfrac23, 1\}$, the e2m1 format). Zero is a code.
* nonnegative moments ($\nu$, sums of $|g|^2$, running maxima; the moments a block stores with
  `storage(..., real=True)`): no sign bit, and **no zero**. Li et al. (2023), "Memory Efficient Optimizers
  with 4-bit States", show the zero-point problem: a second moment rounded to 0 turns
  $\mu / (\sqrt{\nu} + \epsilon)$ into $\mu / \epsilon$, a huge step. Rounding the smallest values up to
  the smallest code instead overestimates $\nu$ there, which only shortens those steps. 8 bits: 4 exponent
  and 4 mantissa bits (relative spacing $2^{-4}$, smallest code $\approx 2 \cdot 10^{-6}$ of the block's
  maximum); 4 bits: the paper's linear code without zero, $v_k = (k + 1) / 16$. A block of zeros keeps
  scale 0 and reads back as zeros.

Every update reads a quantized moment back in float32, computes in float32, and requantizes the new
moment; nothing of the parameter's size is stored in float32.

**Speed.** Reading and writing a code is a handful of integer operations per entry (shifts, masks, a
bitcast, and for the subnormal codes one float add of $2^{23}$), fused by XLA into the step's kernels; no
table is searched. What costs more is the block's maximum: the new moment must be known in full before
any of it is encoded, so XLA:CPU computes the new moment in each kernel that needs it (the maxima, the
encoding, the parameter update), decoding the old codes each time, rather than keep a float32 temporary
of the parameter's size; the reduction reads one byte per entry (8-bit codes) or two (4-bit), not four:
the float32 bits rounded up and cut (see `_scale_of`). `benchmarks/quant_cost.py` measures each piece.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental.shard_alike import shard_alike

from gradxform.errors import lead

__all__ = [
    "Code",
    "Quantized",
    "QuantizedSpec",
    "Storage",
    "decode",
    "encode",
    "is_quantized",
    "load",
    "quantized",
    "store",
    "zeros",
]

BITS = (4, 8)


@dataclasses.dataclass(frozen=True)
class Code:
    """A closed-form code table: `bits` in all; a sign bit if `signed`; the rest a small float format.

    `linear`: the magnitudes are $(k + 1) / 2^{bits}$ (no zero; 4-bit second moments). Otherwise
    `exp_bits` exponent and `man_bits` mantissa bits, with subnormals, scaled so the largest code is 1;
    `zero=False` rounds magnitudes that would be 0 up to the smallest positive code. A block's scale is
    its largest magnitude rounded up to `scale_bits` mantissa bits (0: a power of two).
    """

    bits: int
    signed: bool
    exp_bits: int = 0
    man_bits: int = 0
    linear: bool = False
    zero: bool = True
    scale_bits: int = 0

    @property
    def name(self) -> str:
        if self.linear:
            return f"linear{self.bits}-nozero"
        kind = "signed" if self.signed else "unsigned"
        return f"{kind}-e{self.exp_bits}m{self.man_bits}" + ("" if self.zero else "-nozero")

    def values(self) -> np.ndarray:
        """The code table: `v[k]` for every code `k` (float32), in the order of the codes."""
        return np.asarray(decode_codes(jnp.arange(2**self.bits, dtype=jnp.uint8), self))


def code_for(bits: int, signed: bool) -> Code:
    """The code a moment of `bits` uses: signed dynamic, or unsigned without zero (see the module docstring)."""
    if bits == 8:  # a float code: its relative spacing is the same in every binade, so a power-of-two scale costs
        # nothing but part of the top binade
        return Code(8, True, 4, 3) if signed else Code(8, False, 4, 4, zero=False)
    # 16 levels: the scale within 2^-7 of the block's maximum, so no level goes unused
    return Code(4, True, 2, 1, scale_bits=7) if signed else Code(4, False, linear=True, zero=False, scale_bits=7)


@dataclasses.dataclass(frozen=True)
class QuantizedSpec:
    """What `gradxform.quantized` returns: a storage choice for a moment (see `quantized`)."""

    bits: int
    block_size: int

    def code(self, signed: bool) -> Code:
        return code_for(self.bits, signed)

    def __repr__(self) -> str:
        return f"quantized(bits={self.bits}, block_size={self.block_size})"


def quantized(bits: int = 8, block_size: int | None = None) -> QuantizedSpec:
    r"""Block-wise quantized storage for a moment: pass it as `mu_dtype=`, `nu_dtype=`, `state_dtype=`, ...

    `gx.adamw(1e-3, mu_dtype=gx.quantized(8), nu_dtype=gx.quantized(8))` keeps Adam's two moments in one
    byte per parameter each, plus one float32 scale per block of `block_size` entries:

    $$\text{bytes per parameter per moment} = \frac{\text{bits}}{8} + \frac{4}{\text{block size}}$$

    Each block (consecutive entries along the parameter's last axis) is scaled by its largest magnitude
    and rounded to the nearest entry of a fixed code table: a signed dynamic (exponent-based) code for
    signed moments (Dettmers et al. 2022), and for nonnegative ones ($\nu$) a code without zero (Li et al.
    2023), so a second moment is never rounded to 0. Each update decodes the moments to float32,
    computes in float32 and requantizes; the codes are described in `gradxform.numerics.quantize`.

    Args:
      bits: 8 or 4.
      block_size: entries per block along the last axis, an even int >= 2 (default 256 at 8 bits,
        128 at 4 bits, the papers' choices). A block never straddles a shard when it divides each
        device's length of the last axis.

    Returns:
      A storage spec for any `*_dtype` argument of a moment.
    """
    who = "quantized"
    if isinstance(bits, (bool, np.bool_)) or not isinstance(bits, (int, np.integer)) or int(bits) not in BITS:
        raise ValueError(f"{lead(who)}: bits={bits!r} is not one of {BITS}.")
    bits = int(bits)
    if block_size is None:
        block_size = 256 if bits == 8 else 128
    if isinstance(block_size, (bool, np.bool_)) or not isinstance(block_size, (int, np.integer)):
        raise TypeError(f"{lead(who)}: block_size={block_size!r} must be an even int >= 2.")
    if block_size < 2 or block_size % 2:
        raise ValueError(
            f"{lead(who)}: block_size={block_size!r} must be an even int >= 2 (4-bit codes pack two to a byte, "
            "and a byte never straddles a block)."
        )
    return QuantizedSpec(bits, int(block_size))


def is_spec(x: Any) -> bool:
    return isinstance(x, QuantizedSpec)


@dataclasses.dataclass(frozen=True)
class Storage:
    """What a storage rule returns for a quantized moment: its code and block size."""

    code: Code
    block_size: int

    def zeros(self, x: Any, value: Any = 0) -> Quantized:
        return zeros(x, self.code, self.block_size, value)

    def matches(self, q: Any) -> bool:
        return isinstance(q, Quantized) and q.code == self.code and q.block_size == self.block_size


# ---- the node ----


@jax.tree_util.register_pytree_with_keys_class
class Quantized:
    """A quantized moment leaf: `codes` (uint8) and `scales` (float32), with a static code and shape.

    `shape` is the parameter's; `dtype` is float32, the dtype the moment is read back in.
    8-bit codes have the parameter's shape; 4-bit codes pack two entries per byte along the last axis.
    """

    __slots__ = ("codes", "scales", "code", "block_size", "n")

    def __init__(self, codes: Any, scales: Any, code: Code, block_size: int, n: int | None):
        self.codes = codes
        self.scales = scales
        self.code = code
        self.block_size = block_size
        self.n = n  # the length of the last axis; None for a 0-d parameter

    def tree_flatten_with_keys(self):
        keys = (jax.tree_util.GetAttrKey("codes"), jax.tree_util.GetAttrKey("scales"))
        return tuple(zip(keys, (self.codes, self.scales))), (self.code, self.block_size, self.n)

    def tree_flatten(self):
        return (self.codes, self.scales), (self.code, self.block_size, self.n)

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children, *aux)

    @property
    def shape(self) -> tuple:
        """The parameter's shape, read off the codes (so a shard of the node knows its own shape)."""
        if self.n is None:
            return ()
        cs = tuple(self.codes.shape)
        return cs if self.code.bits == 8 else cs[:-1] + (2 * cs[-1] - self.n % 2,)

    @property
    def dtype(self) -> jnp.dtype:
        return jnp.dtype(jnp.float32)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return (
            f"Quantized({self.code.name}, block_size={self.block_size}, codes={self.codes!r}, scales={self.scales!r})"
        )


def is_quantized(x: Any) -> bool:
    return isinstance(x, Quantized)


# ---- the codes: closed form ----


def _encode_magnitudes(y: jax.Array, code: Code) -> jax.Array:
    r"""The nearest code magnitude (int32) of each `y` in [0, 1].

    Float codes: $w = y \cdot top$ is already in the format's units. In the normal range its float32 bits,
    mantissa rounded to `man_bits` (ties to even) and exponent re-biased, are the code: one integer add of
    a constant and a shift. Below the smallest normal the code is $w \cdot 2^{e_{max} - 1 + m}$ rounded to an
    integer, which adding $2^{23}$ does in the float unit (ties to even) and subtracting its bits reads off.
    No `round` and no float-to-int conversion, which XLA:CPU compiles to several instructions each (the
    codes are bitwise those of the textbook formulas, `tests/test_quantized.py`).
    """
    if code.linear:
        levels = 2**code.bits
        return jnp.clip(jnp.round(y * levels) - 1, 0, levels - 1).astype(jnp.int32)  # k = 0 is 1/16: no zero
    e_bits, m_bits = code.exp_bits, code.man_bits
    emax = 2**e_bits - 1
    w = y * np.float32(2.0 - 2.0**-m_bits)  # in [0, top]: the format's own values
    bits = jax.lax.bitcast_convert_type(w, jnp.int32)
    shift = 23 - m_bits
    # (bits + half - 1 + lsb) >> shift rounds the mantissa, ties to even; the re-bias is folded into the constant
    bias = ((1 << (shift - 1)) - 1) - (((127 - emax) << m_bits) << shift)
    normal = (bits + bias + ((bits >> shift) & 1)) >> shift
    magic = np.float32(2.0**23)  # adding it rounds a float below 2^22 to an integer, ties to even
    sub = jax.lax.bitcast_convert_type(w * np.float32(2.0 ** (emax - 1 + m_bits)) + magic, jnp.int32) - int(
        np.float32(magic).view(np.int32)
    )
    k = jnp.where(w < np.float32(2.0 ** (1 - emax)), sub, normal)
    return jnp.clip(k, 0 if code.zero else 1, 2 ** (e_bits + m_bits) - 1)


def _decode_magnitudes(k: jax.Array, code: Code) -> jax.Array:
    """The value in [0, 1] of each code magnitude `k` (int32)."""
    if code.linear:
        return (k + 1).astype(jnp.float32) * np.float32(2.0**-code.bits)
    e_bits, m_bits = code.exp_bits, code.man_bits
    emax = 2**e_bits - 1
    e = k >> m_bits
    m = k & ((1 << m_bits) - 1)
    normal = jax.lax.bitcast_convert_type(((e + (127 - emax)) << 23) | (m << (23 - m_bits)), jnp.float32)
    sub = m.astype(jnp.float32) * np.float32(2.0 ** (1 - emax - m_bits))
    return jnp.where(e == 0, sub, normal) * np.float32(1.0 / (2.0 - 2.0**-m_bits))


def encode_codes(y: jax.Array, code: Code) -> jax.Array:
    """Codes (int32, `code.bits` wide) of `y` in [-1, 1] (in [0, 1] for an unsigned code)."""
    if not code.signed:
        return _encode_magnitudes(jnp.maximum(y, 0), code)
    k = _encode_magnitudes(jnp.abs(y), code)
    return jnp.where(y < 0, k | (1 << (code.bits - 1)), k)


def decode_codes(k: jax.Array, code: Code) -> jax.Array:
    """The values in [-1, 1] of codes `k` (any integer dtype)."""
    k = k.astype(jnp.int32)
    if not code.signed:
        return _decode_magnitudes(k, code)
    sign = 1 << (code.bits - 1)
    v = _decode_magnitudes(k & (sign - 1), code)
    return jnp.where((k & sign) != 0, -v, v)


# ---- blocks ----


def _work_shape(shape: tuple) -> tuple:
    return tuple(shape) if len(shape) else (1,)


def _block(n: int, block_size: int) -> int:
    """The entries of a block: `block_size`, or the whole axis when it is shorter."""
    return min(block_size, n) if n else block_size


def num_blocks(n: int, block_size: int) -> int:
    return math.ceil(n / _block(n, block_size)) if n else 0


def scales_shape(shape: tuple, block_size: int) -> tuple:
    """`shape[:-1] + (ceil(n / block_size),)` (blocks of a shorter last axis are the whole axis)."""
    w = _work_shape(shape)
    return w[:-1] + (num_blocks(w[-1], block_size),)


def codes_shape(shape: tuple, bits: int, block_size: int) -> tuple:
    """The parameter's shape at 8 bits; at 4, `ceil(n / 2)` bytes along the last axis (two entries a byte)."""
    if bits == 8:
        return tuple(shape)
    w = _work_shape(shape)
    return w[:-1] + ((w[-1] + 1) // 2,)


def _blocked(x: jax.Array, block_size: int) -> tuple[jax.Array, int]:
    """`x` (work shape) as `(..., nb, b)`, zero-padded at the end of the last axis; and the padding."""
    n = x.shape[-1]
    b = _block(n, block_size)
    nb = num_blocks(n, block_size)
    pad = nb * b - n
    if pad:
        x = jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, pad)])
    return x.reshape(x.shape[:-1] + (nb, b)), pad


def _scale_of(blocks: jax.Array, code: Code) -> jax.Array:
    """Each block's scale: $\\max |x|$ rounded up to `code.scale_bits` mantissa bits (0 for a block of zeros).

    The maximum is taken over each entry's float32 bits rounded up and cut to a byte (8-bit codes: the
    exponent, so the scale is a power of two) or to two bytes (4-bit codes: bfloat16), so the temporary of
    the parameter's size that the reduction reads is 1 or 2 bytes an entry, not 4 (see "Speed" above).
    """
    bits = jax.lax.bitcast_convert_type(jnp.abs(blocks), jnp.int32)
    drop = 23 - code.scale_bits
    narrow = jnp.uint8 if code.scale_bits == 0 else jnp.uint16
    up = ((bits + ((1 << drop) - 1)) >> drop).astype(narrow)  # rounded up: the scale is never below max |x|
    top = jnp.max(up, axis=-1).astype(jnp.int32)
    return jax.lax.bitcast_convert_type(top << drop, jnp.float32)


def _pack(k: jax.Array) -> jax.Array:
    """4-bit codes `(..., n)` to bytes `(..., ceil(n / 2))`, two consecutive entries a byte (the first in the
    low nibble), through XLA's own packed `uint4` (no strided slices, no concatenation)."""
    if k.shape[-1] % 2:
        k = jnp.pad(k, [(0, 0)] * (k.ndim - 1) + [(0, 1)])
    pairs = k.reshape(k.shape[:-1] + (-1, 2)).astype(jnp.uint4)
    return jax.lax.bitcast_convert_type(pairs, jnp.uint8)


def _unpack(c: jax.Array, n: int) -> jax.Array:
    """Bytes `(..., ceil(n / 2))` back to the `n` 4-bit codes of each row (int32)."""
    k = jax.lax.bitcast_convert_type(c, jnp.uint4).reshape(c.shape[:-1] + (-1,)).astype(jnp.int32)
    return k if k.shape[-1] == n else k[..., :n]


def encode(x: jax.Array, code: Code, block_size: int) -> Quantized:
    """`x` (real) quantized block by block: codes and per-block scales (their largest magnitude)."""
    shape = tuple(x.shape)
    xw = x.astype(jnp.float32).reshape(_work_shape(shape))
    n = xw.shape[-1]
    if n == 0:
        codes = jnp.zeros(codes_shape(shape, code.bits, block_size), jnp.uint8)
        return Quantized(codes, jnp.zeros(scales_shape(shape, block_size), jnp.float32), code, block_size, n)
    blocks, pad = _blocked(xw, block_size)
    scale = _scale_of(blocks, code)
    inv = 1.0 / jnp.where(scale > 0, scale, jnp.inf)  # 0 for a block of zeros; one division a block
    k = encode_codes(blocks * inv[..., None], code)
    k = k.reshape(k.shape[:-2] + (-1,))
    if pad:
        k = k[..., :n]
    codes = _pack(k) if code.bits == 4 else k.astype(jnp.uint8).reshape(shape)
    return Quantized(codes, scale, code, block_size, n if shape else None)


def decode(q: Quantized) -> jax.Array:
    """The float32 values of a quantized moment, in its parameter's shape."""
    shape = q.shape
    n = _work_shape(shape)[-1]
    if n == 0:
        return jnp.zeros(shape, jnp.float32)
    k = _unpack(q.codes, n) if q.code.bits == 4 else q.codes.reshape(_work_shape(shape))
    blocks, _ = _blocked(decode_codes(k, q.code), q.block_size)
    x = (blocks * q.scales[..., None]).reshape(blocks.shape[:-2] + (-1,))
    if x.shape[-1] != n:
        x = x[..., :n]
    return x.reshape(shape)


def zeros(x: Any, code: Code, block_size: int, value: Any = 0) -> Quantized:
    """A quantized moment holding `value` everywhere, in the shape of the leaf `x` (an array or a shape struct).

    A constant block has scale $|value|$ and the code of $\\operatorname{sign}(value)$ everywhere, so the
    pieces are filled directly, each placed like the parameter where its shape allows (see `placed`).
    """
    from gradxform.numerics.dtypes import shape_of
    from gradxform.numerics.tree_math import placed

    shape = shape_of(x)
    top = encode_codes(jnp.sign(jnp.asarray(value, jnp.float32)).reshape(()), code)  # each block: s = |value|
    if code.bits == 4:
        top = top | (top << 4)
    n = _work_shape(shape)[-1]
    top = top.astype(jnp.uint8)
    scale = jnp.abs(jnp.asarray(value, jnp.float32))
    if isinstance(x, jax.core.Tracer) and n:
        # under jit: zeros tied to the parameter's sharding (shard_alike), reduced to the pieces' shapes, so
        # XLA's propagation gives each piece the parameter's sharding along the axes it keeps
        _, z = shard_alike(x, jax.lax.full_like(x, 0, jnp.float32))
        z = jax.lax.optimization_barrier(z)  # not folded to a constant, which would lose the sharding
        zw = z.reshape(_work_shape(shape))
        blocks, _ = _blocked(zw, block_size)
        scales = jnp.max(blocks, axis=-1) + scale
        if code.bits == 8:
            _, codes = shard_alike(x, jax.lax.full_like(x, top, jnp.uint8))
        else:
            pairs = jnp.pad(zw, [(0, 0)] * (zw.ndim - 1) + [(0, n % 2)]) if n % 2 else zw
            codes = jnp.max(pairs.reshape(pairs.shape[:-1] + (-1, 2)), axis=-1).astype(jnp.uint8) + top
        return Quantized(codes, scales, code, block_size, n if shape else None)
    codes = placed(x, codes_shape(shape, code.bits, block_size), top, jnp.uint8)
    scales = placed(x, scales_shape(shape, block_size), scale, jnp.float32)
    return Quantized(codes, scales, code, block_size, n if shape else None)


def load(x: Any) -> jax.Array:
    """A stored moment in its compute dtype: decoded if quantized, else cast to at least float32."""
    from gradxform.numerics.dtypes import compute_dtype

    if isinstance(x, Quantized):
        return decode(x)
    return x.astype(compute_dtype(x.dtype))


def store(new: jax.Array, old: Any) -> Any:
    """A new moment stored like the old one: requantized if that is quantized, else rounded to its dtype."""
    if isinstance(old, Quantized):
        if jnp.iscomplexobj(new):
            new = jnp.real(new)
        return encode(new, old.code, old.block_size)
    return new.astype(old.dtype)
