"""Secrets never reach metadata: config values under secret-looking keys and URL passwords are redacted."""

from __future__ import annotations

import re
from typing import Any

# "token" as a credential (auth_token, HF_TOKEN), not a BEATs tokenizer or a count of tokens (max_tokens)
_SECRET_KEY = re.compile(r"(secret|password|passwd|token(?!iz|s$|s_)|credential|access_key|private_key|api_key)",
                         re.I)
_URL_PASSWORD = re.compile(r"(?<=://)([^/@\s:]*):[^/@\s]*@")


def redact(value: Any) -> Any:
    """Drop values under secret-looking keys and passwords inside URLs (``scheme://user:pass@host``),
    so no credential reaches catalog metadata or MLflow params."""
    if isinstance(value, dict):
        return {k: ("<redacted>" if _SECRET_KEY.search(str(k)) else redact(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _URL_PASSWORD.sub(r"\1:<redacted>@", value)
    return value
