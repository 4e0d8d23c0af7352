"""The searcher: answered and refused queries, typed errors, refresh, threads."""

import fcntl
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import ragsnap
from conftest import ANSWERED, OFF_TOPIC


def test_an_answered_query_carries_every_hit_field_and_the_snapshot(built, searcher):
    assert searcher.snapshot_id == built.second == ragsnap.Store(built.store).head()["id"]
    result = searcher.query(ANSWERED, k=3)
    assert not result.refused and result.reason is None
    assert result.snapshot_id == built.second and result.mode == "hybrid"
    assert 1 <= len(result.hits) <= 3 and len(result) == len(result.hits)
    assert "guide/retries.html" in [h.source_path for h in result.hits]
    for h in result.hits:
        assert h.snapshot_id == built.second
        assert h.text.strip() and h.header_path and len(h.content_id) > 8
        assert h.url and h.url.endswith(h.source_path)
        assert h.cosine is not None and h.fused is not None and h.score == pytest.approx(h.cosine)
        assert 0.5 <= h.confidence <= 1.0 and h.supported_by
        assert set(h.to_dict()) >= {"text", "source_path", "url", "header_path", "content_id", "cosine", "lexical", "fused"}
    assert result.best_score == pytest.approx(max(h.score for h in result.hits))
    assert result.best_score >= result.floor
    assert result.to_dict()["outcome"] == "hits"


def test_a_query_the_site_cannot_answer_is_refused_not_guessed(searcher):
    result = searcher.query(OFF_TOPIC)
    assert result.refused and result.hits == [] and len(result) == 0
    assert result.best_score is not None and result.best_score < result.floor
    assert "dense" in result.reason["shortfall"] and result.confidence < 0.5
    # The same query with the floor lowered below its best cosine is answered.
    low = searcher.query(OFF_TOPIC, mode="dense", floor=result.best_score - 0.01)
    assert not low.refused and low.hits


def test_dense_and_lexical_modes_and_bad_options(searcher):
    dense = searcher.query(ANSWERED, mode="dense", k=2)
    assert dense.mode == "dense" and all(h.lexical is None for h in dense.hits)
    lexical = searcher.query(ANSWERED, mode="lexical", k=2)
    assert lexical.mode == "lexical" and all(h.cosine is None for h in lexical.hits)
    for kwargs, name in [({"k": 0}, "k"), ({"k": -3}, "k"), ({"mode": "fuzzy"}, "mode"), ({"floor": 2.0}, "floor"),
                         ({"floor": float("nan")}, "floor"), ({"k": 60}, "k"), ({"k": 10**30}, "k"),
                         ({"ef": 0}, "ef"), ({"floor_percentile": 101}, "floor_percentile")]:
        with pytest.raises(ragsnap.InvalidRequest, match=name):
            searcher.query(ANSWERED, **kwargs)
    for kwargs, name in [({"k": "3"}, "k"), ({"k": True}, "k"), ({"floor": "high"}, "floor")]:
        with pytest.raises(TypeError, match=name):
            searcher.query(ANSWERED, **kwargs)
    with pytest.raises(ValueError, match="empty query"):
        searcher.query("   ")


def test_a_model_other_than_the_snapshots_raises_the_typed_error(built, other_model):
    with pytest.raises(ragsnap.EmbeddingVersionMismatch) as e:
        ragsnap.Searcher.open(built.store, model_dir=other_model)
    assert isinstance(e.value, ragsnap.Error) and "embedding version mismatch" in str(e.value)
    assert e.value.index != e.value.embedder and e.value.index in str(e.value)


def test_a_corrupt_snapshot_and_a_missing_store_raise_typed_errors(built, tmp_path):
    store = built.copy(tmp_path)
    vectors = next((store / "snapshots" / built.second).glob("vectors*"))
    data = bytearray(vectors.read_bytes())
    data[len(data) // 2] ^= 0xFF
    vectors.write_bytes(bytes(data))
    with pytest.raises(ragsnap.CorruptSnapshot, match=vectors.name) as e:
        ragsnap.Searcher.open(store)
    assert e.value.path == str(vectors)
    # The other snapshot is intact and still served by name.
    assert ragsnap.Searcher.open(store, built.first).snapshot_id == built.first
    with pytest.raises(ragsnap.Error, match="no ragsnap store"):
        ragsnap.Store(tmp_path / "nothing-here")
    with pytest.raises(ragsnap.InvalidRequest):
        ragsnap.Searcher.open(store, "HEAD~9")


def test_a_writer_meets_store_locked_while_another_holds_the_lock(built, tmp_path):
    store = built.copy(tmp_path)
    with open(store / "LOCK", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(ragsnap.StoreLocked) as e:
            ragsnap.rollback(store, reason="test")
        assert e.value.path == str(store / "LOCK")
    assert ragsnap.Store(store).head()["id"] == built.second, "head moved although the rollback was refused"


def test_refresh_follows_a_rollback_and_in_flight_results_keep_their_snapshot(built, tmp_path):
    store = built.copy(tmp_path)
    s = ragsnap.Searcher.open(store)
    before = s.query(ANSWERED)
    assert before.snapshot_id == built.second
    assert s.refresh() is False
    moved = ragsnap.rollback(store, reason="bad build")
    assert moved == {"from": built.second, "to": built.first, "reason": "bad build"}
    assert s.snapshot_id == built.second, "switched without refresh()"
    assert s.refresh() is True and s.snapshot_id == built.first
    assert s.query(ANSWERED).snapshot_id == built.first
    assert before.snapshot_id == built.second
    history = ragsnap.Store(store).history()
    assert history[-1]["action"] == "rollback" and history[-1]["to_id"] == built.first


def test_the_background_follower_picks_up_a_new_head(built, tmp_path):
    store = built.copy(tmp_path)
    with ragsnap.Searcher.open(store) as s:
        s.follow(interval=0.05)
        assert s.following
        ragsnap.rollback(store, to=built.first, reason="follower test")
        deadline = time.monotonic() + 10
        while s.snapshot_id != built.first:
            assert time.monotonic() < deadline, f"follower did not switch: {s.last_refresh_error}"
            time.sleep(0.05)
        assert s.last_refresh_error is None
    assert not s.following
    with pytest.raises(ragsnap.InvalidRequest):
        s.follow(interval=0)


def test_threads_share_one_searcher_and_get_the_single_threaded_answers(searcher):
    questions = [ANSWERED, OFF_TOPIC, "How do I make a recurring job fire on the first day of every month?",
                 "Which endpoint should a load balancer probe?"]
    expected = {q: [h.content_id for h in searcher.query(q).hits] for q in questions}
    ticks = 0
    stop = threading.Event()

    def tick():
        nonlocal ticks
        while not stop.is_set():
            ticks += 1

    counter = threading.Thread(target=tick)
    counter.start()
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            got = list(pool.map(lambda q: (q, [h.content_id for h in searcher.query(q).hits]), questions * 4))
    finally:
        stop.set()
        counter.join()
    assert all(ids == expected[q] for q, ids in got)
    # The GIL is released while queries embed and search: the pure-Python counter kept running.
    assert ticks > 10_000


def test_the_store_lists_snapshots_history_and_resolves_references(built):
    store = ragsnap.Store(built.store)
    assert store.path == built.store
    assert [s["id"] for s in store.snapshots() if s["is_head"]] == [built.second]
    assert {s["id"] for s in store.snapshots()} == {built.first, built.second}
    assert store.resolve("HEAD~1") == built.first and store.resolve("HEAD") == built.second
    assert [h["action"] for h in store.history()][:2] == ["promote", "promote"]
    with pytest.raises(ragsnap.InvalidRequest, match="HEAD~5"):
        store.resolve("HEAD~5")
    # A pinned snapshot is served as asked, whatever head is.
    assert ragsnap.Searcher.open(built.store, built.first, lexical_only=True).query(
        ANSWERED, mode="lexical").snapshot_id == built.first
