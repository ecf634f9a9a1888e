"""An event's id, made from its seq and read back into it.

Until revision 0011 each event stored a random UUID of its own, with a unique index: about
90 bytes an event, and its index written at every insert (a settle writes five events a
node). Now the id is a function of the seq the store gives the event: a keyed permutation of
the seq and a keyed tag of that, packed into the 122 free bits of a version 4 UUID. Distinct
seqs give distinct ids, every id looks as random as a drawn one, and an id this store did not
make (another store's, one made up) reads back as no seq at all, but with odds of 2^-58.

The key is the store's own (the `event_id_key` setting), made once per data dir: ids stay
what they were across restarts. The seqs are never used twice (AUTOINCREMENT on SQLite, a
sequence on PostgreSQL), so no id ever names a second event."""

from __future__ import annotations

import re

from hyperpod_local.domain.ids import uuid4_bits, uuid4_text

# The setting that holds the key: 256 bits, as hex.
KEY_SETTING = "event_id_key"

_MASK = (1 << 64) - 1
_TAG_BITS = 58
# splitmix64's multipliers; odd, so multiplying by one is a permutation of 64-bit numbers.
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_M1_INVERSE = pow(_M1, -1, 1 << 64)
_M2_INVERSE = pow(_M2, -1, 1 << 64)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


class EventIds:
    def __init__(self, key_hex: str) -> None:
        key = int(key_hex, 16)
        self._keys = tuple((key >> (64 * place)) & _MASK for place in range(4))

    def id_of(self, seq: int) -> str:
        k0, k1, k2, k3 = self._keys
        mixed = _mix(seq, k0, k1)
        return uuid4_text((mixed << _TAG_BITS) | (_mix(mixed, k2, k3) >> (64 - _TAG_BITS)))

    def seq_of(self, event_id: str) -> int | None:
        """The seq `event_id` was made from, or None if this store made no such id."""
        if _UUID.fullmatch(event_id) is None:
            return None
        bits = uuid4_bits(event_id)
        k0, k1, k2, k3 = self._keys
        mixed, tag = bits >> _TAG_BITS, bits & ((1 << _TAG_BITS) - 1)
        if _mix(mixed, k2, k3) >> (64 - _TAG_BITS) != tag:
            return None
        return _unmix(mixed, k0, k1)


# Each half a permutation of 64-bit numbers: an xor, a multiplication by an odd number, and
# x ^ (x >> 32), which is its own inverse.
def _mix(value: int, k0: int, k1: int) -> int:
    value = ((value ^ k0) * _M1) & _MASK
    value ^= value >> 32
    value = ((value ^ k1) * _M2) & _MASK
    return value ^ (value >> 32)


def _unmix(value: int, k0: int, k1: int) -> int:
    value ^= value >> 32
    value = ((value * _M2_INVERSE) & _MASK) ^ k1
    value ^= value >> 32
    return ((value * _M1_INVERSE) & _MASK) ^ k0
