"""The worker pool: results in order and bit-identical whatever the number of workers, one intra-op thread per
run, per-worker data from the initializer, dependent runs through futures, and failures passed on."""
import pytest
import torch

from latentspace.training.pool import WorkerPool, as_completed, worker_count, worker_state


def _load(n: int) -> torch.Tensor:
    return torch.randn(n, 16, generator=torch.Generator().manual_seed(123))


def _train(seed: int) -> dict:
    """A small training run on the worker's data: its weights after a few Adam steps."""
    x = worker_state()
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(20):
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {"seed": seed, "threads": torch.get_num_threads(), "state": model.state_dict()}


def _fail(_):
    raise ValueError("run failed")


def _pool(workers: int) -> WorkerPool:
    return WorkerPool(workers, "cpu", tasks=4, initializer=_load, initargs=(4096,))


@pytest.fixture(scope="module")
def two_workers():
    """One pool of two worker processes for the tests below: starting one (torch in each) costs seconds."""
    with _pool(2) as pool:
        yield pool


def test_results_are_in_order_and_bit_identical_for_one_and_two_workers(two_workers):
    with _pool(1) as pool:
        one = pool.map(_train, [0, 1, 2, 3])
    two = two_workers.map(_train, [0, 1, 2, 3])
    assert [r["seed"] for r in one] == [r["seed"] for r in two] == [0, 1, 2, 3]
    for a, b in zip(one, two):
        assert a["state"].keys() == b["state"].keys()
        assert all(torch.equal(a["state"][k], b["state"][k]) for k in a["state"])
    assert {r["threads"] for r in one + two} == {1}


def test_dependent_runs_through_futures(two_workers):
    first = {two_workers.submit(_train, s): s for s in (0, 1)}
    second = [two_workers.submit(_train, first[f] + 10) for f in as_completed(first)]
    assert sorted(f.result()["seed"] for f in second) == [10, 11]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failed_run_raises_in_the_stage(workers):
    with pytest.raises(ValueError, match="run failed"):
        with WorkerPool(workers, "cpu", tasks=2) as pool:
            pool.map(_fail, [0, 1])


def test_worker_count():
    assert worker_count(4, "cpu", tasks=2) == 2          # never more processes than runs
    assert worker_count(3, "cpu", tasks=8) == 3
    assert worker_count("auto", "cpu", tasks=1) == 1
    assert worker_count("auto", "cuda", tasks=8) == 1    # one process drives the GPU
