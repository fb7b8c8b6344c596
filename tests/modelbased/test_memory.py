"""LRU memory (Santoro et al. 2016, Sec. 3.1) on hand-sized states."""

import math

import pytest
import torch

from metaloop.modelbased.memory import LRUMemory, MemoryState, least_used_weights


def state_with(memory, usage, read_weights, heads=1):
    usage = torch.tensor([usage], dtype=torch.float64)
    return MemoryState(
        memory=torch.tensor([memory], dtype=torch.float64),
        usage=usage,
        read_weights=torch.tensor([read_weights], dtype=torch.float64),
        least_used=least_used_weights(usage, heads),
        reads=torch.zeros(1, heads * len(memory[0]), dtype=torch.float64),
    )


def test_least_used_marks_the_n_smallest_usages_and_breaks_ties_by_index():
    usage = torch.tensor([[0.5, 0.1, 0.9, 0.3], [0.0, 0.0, 0.0, 0.0]])
    assert least_used_weights(usage, 1).tolist() == [[0, 1, 0, 0], [1, 0, 0, 0]]
    assert least_used_weights(usage, 2).tolist() == [[0, 1, 0, 1], [1, 1, 0, 0]]


def test_lru_write_goes_to_the_least_used_slot():
    mem = LRUMemory(slots=4, dim=2, heads=1, gamma=0.5)
    state = state_with([[1, 0], [0, 1], [1, 1], [2, 0]], [0.5, 0.1, 0.9, 0.3], [[0, 0, 1, 0]])
    key = torch.tensor([[[3.0, 4.0]]], dtype=torch.float64)
    _, new = mem.step(state, key, torch.tensor([[-50.0]], dtype=torch.float64))  # gate ~ 0: LRU
    # slot 1 (usage 0.1) is erased and receives the key; every other row is untouched
    assert torch.allclose(new.memory[0], torch.tensor([[1, 0], [3, 4], [1, 1], [2, 0]], dtype=torch.float64))
    w_write = mem.write_weights(state, torch.tensor([[-50.0]], dtype=torch.float64))
    assert torch.allclose(w_write, torch.tensor([[[0, 1, 0, 0]]], dtype=torch.float64))


def test_gate_open_writes_to_last_read_slot_but_least_used_is_still_erased():
    mem = LRUMemory(slots=4, dim=2, heads=1, gamma=0.5)
    state = state_with([[1, 0], [0, 1], [1, 1], [2, 0]], [0.5, 0.1, 0.9, 0.3], [[0, 0, 1, 0]])
    key = torch.tensor([[[3.0, 4.0]]], dtype=torch.float64)
    _, new = mem.step(state, key, torch.tensor([[50.0]], dtype=torch.float64))
    expected = torch.tensor([[1, 0], [0, 0], [4, 5], [2, 0]], dtype=torch.float64)
    assert torch.allclose(new.memory[0], expected)


def test_read_is_softmax_of_cosine_and_usage_follows_eq5():
    mem = LRUMemory(slots=3, dim=2, heads=1, gamma=0.5)
    state = state_with([[1, 0], [0, 1], [1, 1]], [0.2, 0.6, 0.4], [[0.0, 1.0, 0.0]])
    key = torch.tensor([[[1.0, 0.0]]], dtype=torch.float64)
    reads, new = mem.step(state, key, torch.tensor([[0.0]], dtype=torch.float64))  # gate 0.5
    # write: 0.5 * read(slot 1) + 0.5 * lru(slot 0); slot 0 erased first
    memory = torch.tensor([[0.5, 0], [0.5, 1], [1, 1]], dtype=torch.float64)
    assert torch.allclose(new.memory[0], memory)
    cos = torch.tensor([1.0, 0.5 / math.sqrt(1.25), 1 / math.sqrt(2)], dtype=torch.float64)
    w_read = cos.softmax(0)
    assert torch.allclose(new.read_weights[0, 0], w_read)
    assert torch.allclose(reads[0], w_read @ memory)
    usage = 0.5 * torch.tensor([0.2, 0.6, 0.4], dtype=torch.float64) + w_read + torch.tensor([0.5, 0.5, 0])
    assert torch.allclose(new.usage[0], usage)
    assert usage.argmin() == 2  # ~0.52 against ~1.02 and ~1.04
    assert new.least_used[0].tolist() == [0, 0, 1]


def test_two_heads_write_to_the_two_least_used_slots():
    mem = LRUMemory(slots=4, dim=1, heads=2)
    state = mem.initial_state(1, dtype=torch.float64)
    state.usage = torch.tensor([[0.9, 0.2, 0.8, 0.1]], dtype=torch.float64)
    state.least_used = least_used_weights(state.usage, 2)
    w = mem.write_weights(state, torch.full((1, 2), -50.0, dtype=torch.float64))
    assert w[0].tolist() == [[0, 1, 0, 1], [0, 1, 0, 1]]


def test_more_heads_than_slots_is_a_clear_error():
    with pytest.raises(ValueError, match="heads"):
        LRUMemory(slots=2, heads=3)


def test_key_strength_sharpens_the_read_by_scaling_the_cosines():
    mem = LRUMemory(slots=3, dim=2, heads=1, gamma=0.5)
    state = state_with([[1, 0], [0, 1], [1, 1]], [0.2, 0.6, 0.4], [[0.0, 1.0, 0.0]])
    key = torch.tensor([[[1.0, 0.0]]], dtype=torch.float64)
    gate = torch.tensor([[0.0]], dtype=torch.float64)
    _, plain = mem.step(state, key, gate)
    _, sharp = mem.step(state, key, gate, strength=torch.tensor([[10.0]], dtype=torch.float64))
    memory = plain.memory[0]
    cos = torch.nn.functional.cosine_similarity(key[0], memory, dim=-1)
    assert torch.allclose(sharp.read_weights[0, 0], (10 * cos).softmax(0))
    assert torch.allclose(sharp.memory, plain.memory)  # the write does not depend on it
    assert sharp.read_weights[0, 0].max() > plain.read_weights[0, 0].max()
