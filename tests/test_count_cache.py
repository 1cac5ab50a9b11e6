"""attncli.count_cache: a repeated profile of a registry model reads its counts instead of tracing,
and only ever for exactly the same computation. conftest.py turns the cache off for every other
test; here it is on, in a temporary directory."""

import json
import os
import subprocess
import sys

import pytest

from attncli import api, count_cache
from attncli.counting import OpCost, register_rule, unregister_rule
from attncli.modelspec import ModelRequest

SMALL = "1,3,32,32"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.delenv("ATTNCLI_NO_CACHE", raising=False)
    monkeypatch.setenv("ATTNCLI_CACHE_DIR", str(root))
    return root


def entries(root):
    return sorted((root / "counts").glob("*.json")) if (root / "counts").is_dir() else []


def comparable(report):
    data = report.as_dict()
    data.pop("environment")
    data.pop("counts_from_cache")
    return data


def test_second_profile_reads_the_cache_and_reports_the_same(cache, monkeypatch):
    first = api.profile("eca_resnet18", input_shape=SMALL, latency=False)
    assert not first.counts_from_cache
    assert len(entries(cache)) == 2  # eca_resnet18 and its baseline, resnet18
    second = api.profile("eca_resnet18", input_shape=SMALL, latency=False)
    assert second.counts_from_cache
    assert comparable(second) == comparable(first)
    assert isinstance(second.macs, int) and all(isinstance(row.macs, int) for row in second.modules)

    monkeypatch.setenv("ATTNCLI_NO_CACHE", "1")
    traced = api.profile("eca_resnet18", input_shape=SMALL, latency=False)
    assert not traced.counts_from_cache and comparable(traced) == comparable(second)
    module = api.build("eca_resnet18", input_shape=SMALL).module
    assert second.params.total == sum(p.numel() for p in module.parameters())


def test_hand_counted_block_from_the_cache(cache):
    # SE on 64 channels, reduction 16: two bias-free 64x4 linears on the pooled 1x1 descriptor
    for _ in range(2):
        report = api.profile("se", input_shape="1,64,8,8", latency=False)
        assert report.params.total == 2 * 64 * 4 and report.macs == 2 * 64 * 4
    assert report.counts_from_cache and len(entries(cache)) == 1


def test_a_cached_entry_is_what_the_profile_reports(cache):
    """Nothing is traced on a hit: an entry's (here doctored) figure is what comes back."""
    api.profile("se", input_shape="1,64,8,8", latency=False)
    (path,) = entries(cache)
    data = json.loads(path.read_text())
    data["counts"]["costs"]["macs"] = 123_456_789
    path.write_text(json.dumps(data))
    assert api.profile("se", input_shape="1,64,8,8", latency=False).macs == 123_456_789


def test_latency_still_builds_and_times_but_reuses_the_counts(cache):
    api.profile("se", input_shape="1,64,8,8", latency=False)
    report = api.profile("se", input_shape="1,64,8,8", device="cpu", warmup=1, iters=3)
    assert report.counts_from_cache and report.latency is not None and report.macs == 512


@pytest.mark.parametrize(
    "changed",
    [{"input_shape": "1,64,16,16"}, {"params": ["reduction=8"]}, {"seed": 1}],
)
def test_a_changed_request_misses(cache, changed):
    api.profile("se", input_shape="1,64,8,8", latency=False)
    kwargs = {"input_shape": "1,64,8,8", **changed}
    report = api.profile("se", latency=False, **kwargs)
    assert not report.counts_from_cache and len(entries(cache)) == 2


def test_keys_differ_by_block_and_position(cache):
    keys = {
        count_cache.entry_key(ModelRequest.make("resnet18", attn=attn, attn_position=pos))
        for attn in ("se", "eca")
        for pos in (None, "after_3x3")
    }
    assert None not in keys and len(keys) == 4


def test_a_corrupt_entry_is_ignored_and_rewritten(cache):
    api.profile("se", input_shape="1,64,8,8", latency=False)
    (path,) = entries(cache)
    path.write_text('{"format": 1, "key": "trunc')
    report = api.profile("se", input_shape="1,64,8,8", latency=False)
    assert not report.counts_from_cache and report.macs == 512
    assert api.profile("se", input_shape="1,64,8,8", latency=False).counts_from_cache


def test_an_entry_under_another_key_is_not_read(cache):
    api.profile("se", input_shape="1,64,8,8", latency=False)
    (path,) = entries(cache)
    other = ModelRequest.make("se", input_shape="1,64,16,16")
    path.rename(path.with_name(count_cache.entry_key(other) + ".json"))
    assert not api.profile("se", input_shape="1,64,16,16", latency=False).counts_from_cache


def test_user_code_plugins_weights_and_rules_are_never_cached(cache, tiny_net_file, tmp_path):
    for _ in range(2):
        report = api.profile(f"{tiny_net_file}:Tiny", input_shape="1,3,8,8", latency=False)
        assert not report.counts_from_cache
    assert entries(cache) == []
    assert count_cache.entry_key(ModelRequest.make("resnet18", attn=f"{tiny_net_file}:Tiny")) is None
    assert count_cache.entry_key(ModelRequest.make("attncli.blocks.se:SE", input_shape="1,64,8,8")) is None
    assert count_cache.entry_key(ModelRequest.make("se", weights=tmp_path / "w.pt")) is None
    assert count_cache.entry_key(ModelRequest.make("se")) is not None
    register_rule("prim::PythonOp.CacheTestFn", lambda inputs, outputs: OpCost(0, 0), "test rule")
    try:
        assert count_cache.entry_key(ModelRequest.make("se")) is None
    finally:
        unregister_rule("prim::PythonOp.CacheTestFn")


def test_no_cache_env_turns_it_off(cache, monkeypatch):
    monkeypatch.setenv("ATTNCLI_NO_CACHE", "1")
    for _ in range(2):
        assert not api.profile("se", input_shape="1,64,8,8", latency=False).counts_from_cache
    assert entries(cache) == [] and count_cache.entry_key(ModelRequest.make("se")) is None


def test_an_unwritable_cache_is_skipped(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.delenv("ATTNCLI_NO_CACHE", raising=False)
    monkeypatch.setenv("ATTNCLI_CACHE_DIR", str(blocker / "cache"))
    for _ in range(2):
        report = api.profile("se", input_shape="1,64,8,8", latency=False)
        assert not report.counts_from_cache and report.macs == 512


def test_cache_location(monkeypatch, tmp_path):
    monkeypatch.delenv("ATTNCLI_NO_CACHE", raising=False)
    monkeypatch.delenv("ATTNCLI_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert count_cache.cache_dir() == tmp_path / "attncli"
    monkeypatch.setenv("ATTNCLI_CACHE_DIR", str(tmp_path / "mine"))
    assert count_cache.cache_dir() == tmp_path / "mine"


def test_cli_says_when_counts_come_from_the_cache(cache):
    env = {**os.environ, "ATTNCLI_CACHE_DIR": str(cache)}
    env.pop("ATTNCLI_NO_CACHE", None)
    args = [sys.executable, "-m", "attncli", "profile", "se", "-s", "1,64,8,8", "--no-latency"]
    runs = [subprocess.run([*args, "-f", "json"], capture_output=True, text=True, env=env, timeout=300) for _ in range(2)]
    first, second = (json.loads(run.stdout) for run in runs)
    assert not first["counts_from_cache"] and second["counts_from_cache"]
    assert {k: v for k, v in first.items() if k not in ("environment", "counts_from_cache")} == {
        k: v for k, v in second.items() if k not in ("environment", "counts_from_cache")
    }
    table = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert table.returncode == 0 and "count cache" in table.stdout
