"""``PushToHub``: a global step that pushes every row it receives to a Hugging Face Hub dataset.

The token is a ``SecretStr``: it is left out of the signature and ``pipeline.yaml``, and an error
raised while pushing is reported with the token masked in its message and traceback, as typed and
as a Python or bytes literal shows it (an HTTP client refusing a header quotes it that way); the
original exception, whose frames hold the token, is not kept. Surrounding whitespace (a token
pasted with its newline) is stripped, as ``huggingface_hub`` does for the tokens it finds.
"""

from __future__ import annotations

import traceback
from typing import Any, ClassVar

from pydantic import Field, SecretStr

from distil_dagster.errors import DistilDagsterError, RemoteTraceback
from distil_dagster.mixins.runtime_parameters import OptionalRuntimeParameter, RuntimeParameter
from distil_dagster.secrets import mask_secret
from distil_dagster.steps.base import GlobalStep, StepInput
from distil_dagster.steps.typing import StepOutput

__all__ = ["PushToHub", "PushToHubError"]


class PushToHubError(DistilDagsterError, RuntimeError):
    """A ``PushToHub`` step found no Hub token, or the Hub refused the push (the token masked)."""


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Rows as columns: every column of any row, in order of appearance; ``None`` where a row lacks it."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return {name: [row.get(name) for row in rows] for name in names}


class PushToHub(GlobalStep):
    """Push all the rows received, as one split of a Hub dataset, then pass them on unchanged.

    Attributes:
        repo_id: the dataset repository, ``"<user or org>/<name>"``.
        split: the split the rows are pushed as.
        private: create the repository private (an existing one keeps its visibility).
        token: a Hub token with write access; default ``$HF_TOKEN``, else the token saved by
            ``hf auth login``. A secret: never in the signature, ``pipeline.yaml``, logs or errors.

    Examples:
        >>> push = PushToHub(repo_id="me/my-dataset")  # doctest: +SKIP
    """

    repo_id: RuntimeParameter[str] = Field(default=None, description="The Hub dataset repository to push to.")
    split: RuntimeParameter[str] = Field(default="train", description="The split the rows are pushed as.")
    private: RuntimeParameter[bool] = Field(default=False, description="Whether to create the repository private.")
    token: OptionalRuntimeParameter[SecretStr] = Field(
        default=None, description="A Hub token (default: $HF_TOKEN, else the token saved by `hf auth login`)."
    )

    signature_exclude: ClassVar[frozenset[str]] = frozenset({"token"})

    def _token(self) -> str:
        """The token to push with: ``token``, else ``$HF_TOKEN``, else the saved login."""
        given = self.token.get_secret_value().strip() if self.token is not None else ""
        if given:
            return given
        from huggingface_hub import get_token

        found = get_token()  # $HF_TOKEN first, then the file `hf auth login` writes under $HF_HOME (both stripped)
        if not found:
            raise PushToHubError(
                f"Step '{self.name}': no Hugging Face token to push to '{self.repo_id}'. Pass token=... (or the "
                "runtime parameter 'token'), set HF_TOKEN, or run `hf auth login`."
            )
        return found

    def load(self) -> None:
        """Check that a token is available, so a run without one fails before any data flows."""
        super().load()
        self._token()

    def process(self, inputs: StepInput) -> StepOutput:  # type: ignore[override]  # one input, as distilabel
        """Push ``inputs`` as a ``datasets.Dataset``, then yield them unchanged."""
        from datasets import Dataset

        token = self._token()
        failure: PushToHubError | None = None
        try:
            Dataset.from_dict(_columns(inputs)).push_to_hub(
                self.repo_id, split=self.split, private=bool(self.private), token=token
            )
        except Exception as exc:  # any failure: report it with the token masked
            failure = self._masked(exc, token, len(inputs))
        if failure is not None:  # raised outside the except block: the original is not chained
            raise failure
        yield inputs

    def _masked(self, exc: Exception, token: str, rows: int) -> PushToHubError:
        """``exc`` as a ``PushToHubError`` naming the step, the token masked in its text and traceback."""
        message = (
            f"Step '{self.name}': pushing {rows} rows to the Hub dataset '{self.repo_id}' (split '{self.split}') "
            f"failed: {type(exc).__name__}: {exc}"
        )
        error = PushToHubError(mask_secret(message, token))
        error.__cause__ = RemoteTraceback(mask_secret("".join(traceback.format_exception(exc)), token))
        return error
