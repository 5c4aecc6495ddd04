"""Sticky routing: the same key meets the same arm everywhere; shares come out right."""

from __future__ import annotations

import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from keel.deploy import arm_for
from keel.deploy.routing import bucket


@given(st.text(max_size=50), st.text(max_size=40))
def test_bucket_is_a_stable_fraction(key, salt):
    u = bucket(key, salt)
    assert 0.0 <= u < 1.0
    assert bucket(key, salt) == u


def test_same_arm_in_another_process():
    keys = [f"customer-{i}" for i in range(200)]
    here = [arm_for(k, 0.3, "dep1") for k in keys]
    code = "from keel.deploy import arm_for; print(','.join(arm_for(f'customer-{i}', 0.3, 'dep1') for i in range(200)))"
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert there.stdout.strip().split(",") == here


def test_shares_and_salts():
    keys = [f"k{i}" for i in range(20000)]
    share = sum(arm_for(k, 0.1, "a") == "challenger" for k in keys) / len(keys)
    assert 0.09 < share < 0.11
    # another deployment (salt) reshuffles who meets the challenger
    a = {k for k in keys if arm_for(k, 0.5, "a") == "challenger"}
    b = {k for k in keys if arm_for(k, 0.5, "b") == "challenger"}
    assert 0.4 < len(a & b) / len(a) < 0.6
    unkeyed = sum(arm_for(None, 0.2, "a") == "challenger" for _ in range(20000)) / 20000
    assert 0.18 < unkeyed < 0.22
