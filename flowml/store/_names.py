"""Readable random run names (``adjective-noun-NNN``), as MLflow gives unnamed runs."""

from __future__ import annotations

import secrets

_ADJECTIVES = (
    "able", "amber", "bold", "brave", "bright", "calm", "clever", "crisp", "daring", "eager",
    "fair", "fleet", "gentle", "glad", "grand", "honest", "jolly", "keen", "kind", "lively",
    "lucky", "merry", "nimble", "noble", "patient", "polite", "proud", "quick", "quiet", "rare",
    "sharp", "shy", "silent", "smooth", "steady", "sunny", "swift", "tidy", "vast", "warm",
    "wise", "witty", "young", "zesty",
)
_NOUNS = (
    "ant", "badger", "bear", "bee", "bison", "crane", "crow", "deer", "dove", "eagle", "elk",
    "falcon", "finch", "fox", "frog", "gull", "hare", "hawk", "heron", "horse", "ibis", "jay",
    "koala", "lark", "lion", "lynx", "mole", "moth", "newt", "otter", "owl", "panda", "pike",
    "quail", "raven", "seal", "shrew", "slug", "snail", "stork", "swan", "toad", "trout", "wolf",
    "wren", "yak",
)


def random_run_name() -> str:
    return f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_NOUNS)}-{secrets.randbelow(1000):03d}"
