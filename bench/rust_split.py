"""The Rust simulator's stratified test split, reproduced item for item in Python.

Mirrors `stratified_split` in src/simulate.rs as called from `simulate::run`
(`ChaCha8Rng::seed_from_u64(seed)`, then per class `members.shuffle(rng)`), with the
crate versions Cargo.toml pins: rand 0.9 and rand_chacha 0.9. The baseline uses it so that
its seed S is evaluated on exactly the test set of `lightbulb simulate --seed S`; with a
different RNG the test sets differ and ceilings move by up to ~3 points between splits,
which is larger than the differences being measured. If those crates (or the split) change,
this file has to follow.

Pure Python and slow-ish (a ChaCha block per 16 draws), but one split of ~14k items takes
well under a second.
"""

import math

M32 = 0xFFFFFFFF
M64 = 0xFFFFFFFFFFFFFFFF


def _rotl(v, c):
    return ((v << c) & M32) | (v >> (32 - c))


def _quarter_round(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & M32
    s[d] = _rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & M32
    s[b] = _rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & M32
    s[d] = _rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & M32
    s[b] = _rotl(s[b] ^ s[c], 7)


class ChaCha8:
    """rand_chacha 0.9's `ChaCha8Rng`: only `seed_from_u64` and `next_u32` are needed."""

    def __init__(self, seed):
        # rand_core 0.9 `SeedableRng::seed_from_u64`: the 32-byte key is filled from a PCG32
        # stream seeded with the u64 (one u32 output per 4 key bytes, little-endian).
        state = seed & M64
        self.key = []
        for _ in range(8):
            state = (state * 6364136223846793005 + 11634580027462260723) & M64
            xorshifted = (((state >> 18) ^ state) >> 27) & M32
            rot = state >> 59
            self.key.append(((xorshifted >> rot) | (xorshifted << ((32 - rot) & 31))) & M32)
        self.counter = 0  # stream 0, block counter from 0
        self.buf, self.pos = [], 0

    def _block(self, counter):
        init = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574] + self.key + [counter & M32, counter >> 32, 0, 0]
        s = list(init)
        for _ in range(4):  # 8 rounds = 4 double rounds
            _quarter_round(s, 0, 4, 8, 12)
            _quarter_round(s, 1, 5, 9, 13)
            _quarter_round(s, 2, 6, 10, 14)
            _quarter_round(s, 3, 7, 11, 15)
            _quarter_round(s, 0, 5, 10, 15)
            _quarter_round(s, 1, 6, 11, 12)
            _quarter_round(s, 2, 7, 8, 13)
            _quarter_round(s, 3, 4, 9, 14)
        return [(a + b) & M32 for a, b in zip(s, init)]

    def next_u32(self):
        # rand_chacha buffers 4 blocks (64 words) at a time and hands them out in order.
        if self.pos >= len(self.buf):
            self.buf = [w for i in range(4) for w in self._block(self.counter + i)]
            self.counter += 4
            self.pos = 0
        value = self.buf[self.pos]
        self.pos += 1
        return value

    def below(self, bound):
        """rand 0.9 `random_range(..bound)` for u32: Canon's nearly-unbiased method."""
        product = self.next_u32() * bound
        result, low = product >> 32, product & M32
        if low > (-bound & M32):
            # One more draw decides whether the fractional part carries into the result.
            if low + ((self.next_u32() * bound) >> 32) > M32:
                result += 1
        return result


def _chunk_bound(n):
    """rand 0.9 `IncreasingUniform`: the largest product n*(n+1)*... fitting a u32, and its length."""
    product, current = n, n + 1
    while product * current <= M32:
        product *= current
        current += 1
    return product, current - n


def shuffle(items, rng):
    """rand 0.9 `SliceRandom::shuffle` (in place): Fisher-Yates from the front, with the
    swap indices of several steps packed into one u32 draw (`IncreasingUniform`)."""
    if len(items) <= 1:
        return
    chunk, chunk_remaining = 0, 1  # IncreasingUniform::new(0): the first step needs no draw
    for i in range(len(items)):
        n = i + 1
        if chunk_remaining == 0:
            bound, length = _chunk_bound(n)
            chunk, chunk_remaining = rng.below(bound), length - 1
        else:
            chunk_remaining -= 1
        if chunk_remaining == 0:
            j = chunk
        else:
            j, chunk = chunk % n, chunk // n
        items[i], items[j] = items[j], items[i]


def stratified_split(classes, fraction, seed):
    """(test, pool): sorted positions into `classes`, as the Rust simulator splits them.

    `classes` is each item's class index in Rust's order: items in the order Lightbulb lists
    the dataset, classes numbered as in the config's `label.classes`. Classes are visited in
    increasing index, so that numbering decides which class consumes which random draws.
    """
    rng = ChaCha8(seed)
    by_class = {}
    for i, c in enumerate(classes):
        by_class.setdefault(int(c), []).append(i)
    test, pool = [], []
    for c in sorted(by_class):
        members = by_class[c]
        shuffle(members, rng)
        # f64::round (half away from zero); int(x + 0.5) would round 2.4999999999999996 up.
        whole = math.floor(len(members) * fraction)
        k = whole + (len(members) * fraction - whole >= 0.5)
        test += members[:k]
        pool += members[k:]
    return sorted(test), sorted(pool)
