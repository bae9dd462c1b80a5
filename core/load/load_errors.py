"""What a failed model load means, as one UserError: which part could not be read (config, tokenizer, weights),
whether the model is missing, gated or private on the hub, or needs remote code. A local directory that exists is
never reported as "not found" (issue 17 defect 9): the message names the part and the file that failed."""

from __future__ import annotations

from coupling_tui.core.errors import UserError
from coupling_tui.core.load.hub import hub_host, offline, unreachable

LOGIN_HINT = ("run `hf auth login` (`huggingface-cli login` with an older huggingface_hub) or set HF_TOKEN, with an "
              "account that has access")

PARTS = {
    "config": ("config.json", "cannot be read as a model config",
               "a saved model directory holds the config.json that save_pretrained writes"),
    "tokenizer": ("tokenizer", "cannot be loaded",
                  "the directory needs tokenizer.json (or a slow tokenizer's files) as save_pretrained writes them"),
    "weights": ("weights", "cannot be read", "re-save the model with save_pretrained, or download it again"),
}


class UnreadableModel(UserError):
    """A part of a model (config, tokenizer or weights) that exists but could not be read: corrupt, truncated or
    of an unexpected shape. For a cached conversion it means the cache entry is bad, and the loader converts again."""


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from (transformers wraps hub errors in an OSError)."""
    chain: list[BaseException] = []
    while exc is not None and exc not in chain:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    return chain


def _http_status(exc: BaseException) -> int | None:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def detail(exc: BaseException) -> str:
    """``Type: first line`` of an exception, short enough for one line."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:160]}" if text else type(exc).__name__


def explain(src: str, exc: Exception, part: str, local: bool) -> UserError:
    """The UserError for ``exc``, raised while reading ``part`` (config, tokenizer or weights) of the model at
    ``src`` (a local directory when ``local``, else a hub id)."""
    text = str(exc)
    chain = _causes(exc)
    names = {type(e).__name__ for e in chain}
    if "trust_remote_code" in text:
        return UserError(f"{src} needs custom code from its repository",
                         "re-run with --trust-remote-code if you trust it (it is never enabled silently)")
    if "does not recognize this architecture" in text or "Unrecognized model" in text or "model_type" in text:
        return UserError(f"unsupported architecture: {src}: transformers does not know its model type",
                         f"({detail(exc)})")
    if local:
        what, verb, hint = PARTS[part]
        return UnreadableModel(f"the {what} of {src} {verb} ({detail(exc)})", hint)
    if "GatedRepoError" in names or "gated repo" in text.lower() or any(_http_status(e) in (401, 403) for e in chain):
        return UserError(f"{src} is gated or private and no access token with access to it was found", LOGIN_HINT)
    if "RepositoryNotFoundError" in names:
        return UserError(f"model not found: {src} (no such model on the hub, or a private one)",
                         f"check the id; if it is private, {LOGIN_HINT}")
    if offline():
        where = "offline (HF_HUB_OFFLINE is set): only models already in the local cache can load"
    elif unreachable():
        where = f"{hub_host()} cannot be reached and the model is not in the local cache"
    else:
        where = "check the id or path, and your network"
    return UserError(f"model not found: {src}; {where}", f"({detail(exc)})")
