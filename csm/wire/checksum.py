"""CAST's header/payload checksum (XOR of little-endian 32-bit words).

The header is taken as eight u32 words without the checksum word, the payload as
its whole u32 words, and the 1-3 trailing payload bytes as ``v = (v << 8) + byte``
(unsigned, as on ppc64le). A zero result is replaced by ``ZERO_SUBSTITUTE`` since
zero marks "no checksum".
"""

ZERO_SUBSTITUTE = 0x2EB0C114
_MASK32 = 0xFFFFFFFF


def fields_sum(version, command, flags, priority, reserved, message_id, length, uid, gid):
    """XOR of the u32 words the header packs these fields into (the checksum word left out),
    without packing them: word 0 holds the four bytes, the message id is two words."""
    return ((version | command << 8 | flags << 16 | priority << 24) ^ reserved ^ (message_id & _MASK32)
            ^ (message_id >> 32) ^ length ^ uid ^ gid)


def xor_words(data):
    """XOR of ``data``'s whole little-endian u32 words, with CAST's tail rule.

    Folds the payload as one big integer, halving it each time (log2(n) big-int operations),
    so a 16 MiB payload costs milliseconds rather than a Python loop over words. The tail rule
    ``v = (v << 8) + byte`` over at most three bytes is their big-endian value.
    """
    size = len(data)
    whole = size & ~3
    value = int.from_bytes(data[:whole], "little")
    bits = whole << 3
    while bits > 32:
        half = (bits >> 6) << 5  # the lower half's whole words, in bits
        value = (value >> half) ^ (value & ((1 << half) - 1))
        bits -= half
    return value ^ int.from_bytes(data[whole:], "big") if whole != size else value


def finish(value):
    """Map a raw XOR to a valid (non-zero) checksum."""
    return value or ZERO_SUBSTITUTE
