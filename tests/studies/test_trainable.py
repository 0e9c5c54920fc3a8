"""How the trial trainable names failures it recognizes (the reason lands in the study record)."""

import torch

from studies._trainable import TrialFailure, _is_oom


def test_cuda_out_of_memory_is_recognized_as_oom():
    assert _is_oom(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert _is_oom(RuntimeError("CUDA error: out of memory"))
    assert not _is_oom(ValueError("labels out of range"))


def test_trial_failure_survives_pickling_with_its_reason():
    import pickle

    failure = pickle.loads(pickle.dumps(TrialFailure("oom", "out of GPU memory")))
    assert (failure.reason, failure.message, str(failure)) == ("oom", "out of GPU memory", "oom: out of GPU memory")
