"""``TextGenerationWithImage``: the rendered template and the row's image reach an OpenAI-compatible
server as content parts; a bad image fails its row alone. Against the local OpenAI-compatible server."""

from __future__ import annotations

import base64
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from distil_dagster.models import LLM, GenerateOutput, OpenAILLM, TransformersLLM
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts
from distil_dagster.steps.tasks import TextGenerationWithImage
from tests.models.openai_server import FakeOpenAIServer
from tests.steps.task_runs import run_task

META = "distilabel_metadata"
URL = "https://example.com/cat.jpg"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(24))).decode()
JPEG = base64.b64encode(b"\xff\xd8\xff\xe0" + bytes(range(24))).decode()
GIF = base64.b64encode(b"GIF89a" + bytes(range(24))).decode()
WEBP = base64.b64encode(b"RIFF\x10\x00\x00\x00WEBPVP8 " + bytes(range(24))).decode()
UNKNOWN = base64.b64encode(b"not an image header").decode()


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as running:
        yield running


def openai_llm(server: FakeOpenAIServer) -> OpenAILLM:
    return OpenAILLM(model="fake", base_url=server.base_url, api_key="sk-test")


def user_parts(text: str, url: str) -> dict[str, Any]:
    return {
        "role": "user",
        "content": [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": url}}],
    }


def received(server: FakeOpenAIServer) -> dict[str, list[dict[str, Any]]]:
    """The messages of each request, by the text part of its last user message."""
    return {body["messages"][-1]["content"][0]["text"]: body["messages"] for body in server.bodies}


def image_urls(server: FakeOpenAIServer) -> dict[str, str]:
    """The URL of the image part of each request, by the text part of its last user message."""
    return {text: messages[-1]["content"][1]["image_url"]["url"] for text, messages in received(server).items()}


# -- what reaches the server ----------------------------------------------------------------------
def test_an_image_url_is_sent_as_it_is_after_the_rendered_template(server: FakeOpenAIServer) -> None:
    task = TextGenerationWithImage(name="vision", llm=openai_llm(server))
    assert task.inputs == {"instruction": True, "system_prompt": False, "image": True}
    assert task.outputs == ["generation", "model_name"]
    [row] = run_task(task, [{"instruction": "What is it?", "image": URL}])
    assert received(server) == {"What is it?": [user_parts("What is it?", URL)]}
    assert row["generation"] == f"echo: {user_parts('What is it?', URL)['content']}"
    assert row["model_name"] == "fake" and row["image"] == URL
    assert row[META]["raw_input_vision"] == [user_parts("What is it?", URL)]


def test_the_template_renders_its_columns_into_the_text_part(server: FakeOpenAIServer) -> None:
    task = TextGenerationWithImage(
        name="vision",
        llm=openai_llm(server),
        template="Describe the {{ thing }} in {{ lang }}.",
        columns=["thing", "lang"],
    )
    assert task.inputs == {"thing": True, "lang": True, "system_prompt": False, "image": True}
    run_task(task, [{"thing": "cat", "lang": "French", "image": URL}])
    assert received(server) == {"Describe the cat in French.": [user_parts("Describe the cat in French.", URL)]}


def test_base64_images_become_data_urls_of_their_type(server: FakeOpenAIServer) -> None:
    images = {"png": PNG, "jpeg": JPEG, "gif": GIF, "webp": WEBP, "unknown": UNKNOWN}
    rows = [{"instruction": name, "image": image} for name, image in images.items()]
    rows.append({"instruction": "wrapped", "image": "\n".join([PNG[:16], PNG[16:]])})
    rows.append({"instruction": "data url", "image": f"data:image/png;base64,{PNG}"})
    run_task(TextGenerationWithImage(name="vision", llm=openai_llm(server), image_type="base64"), rows)
    assert image_urls(server) == {
        "png": f"data:image/png;base64,{PNG}",
        "jpeg": f"data:image/jpeg;base64,{JPEG}",
        "gif": f"data:image/gif;base64,{GIF}",
        "webp": f"data:image/webp;base64,{WEBP}",
        "unknown": f"data:image/jpeg;base64,{UNKNOWN}",  # distilabel's type for every image
        "wrapped": f"data:image/png;base64,{PNG}",
        "data url": f"data:image/png;base64,{PNG}",
    }


def test_pil_images_are_encoded_as_jpeg_or_png_when_jpeg_cannot_hold_them(server: FakeOpenAIServer) -> None:
    from PIL import Image as image_module  # pillow is a test dependency

    rows = [
        {"instruction": "rgb", "image": image_module.new("RGB", (4, 3), (200, 10, 10))},
        {"instruction": "rgba", "image": image_module.new("RGBA", (2, 5), (0, 0, 255, 128))},
    ]
    results = run_task(TextGenerationWithImage(name="vision", llm=openai_llm(server), image_type="PIL"), rows)
    assert not any("error_vision" in r[META] for r in results)
    urls = image_urls(server)
    for text, kind, mode, size in [("rgb", "jpeg", "RGB", (4, 3)), ("rgba", "png", "RGBA", (2, 5))]:
        prefix = f"data:image/{kind};base64,"
        assert urls[text].startswith(prefix)
        decoded = image_module.open(io.BytesIO(base64.b64decode(urls[text][len(prefix) :])))
        assert (decoded.format, decoded.mode, decoded.size) == (kind.upper(), mode, size)


def test_without_pillow_a_pil_row_fails_clearly(server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ["PIL", "PIL.Image"]:  # importing them now raises ImportError
        monkeypatch.setitem(sys.modules, module, None)
    [row] = run_task(
        TextGenerationWithImage(name="vision", llm=openai_llm(server), image_type="PIL"),
        [{"instruction": "a", "image": object()}],
    )
    assert row["generation"] is None
    assert row[META]["error_vision"] == (
        "format_input failed: ImportError: image_type='PIL' needs Pillow to encode the image: `pip install pillow`, "
        "or send the images as URLs or base64 strings."
    )
    assert server.bodies == []


# -- system prompt --------------------------------------------------------------------------------
def test_the_system_prompt_is_sent_as_text_and_a_row_system_prompt_wins(server: FakeOpenAIServer) -> None:
    task = TextGenerationWithImage(name="vision", llm=openai_llm(server), system_prompt="Be terse.")
    rows = [
        {"instruction": "task prompt", "image": URL},
        {"instruction": "row prompt", "image": URL, "system_prompt": "Answer in French."},
    ]
    results = run_task(task, rows)
    assert received(server) == {
        "task prompt": [{"role": "system", "content": "Be terse."}, user_parts("task prompt", URL)],
        "row prompt": [{"role": "system", "content": "Answer in French."}, user_parts("row prompt", URL)],
    }
    # Recorded in the user message's form, so that Parquet can store the messages in one column.
    assert results[0][META]["raw_input_vision"] == [
        {"role": "system", "content": [{"type": "text", "text": "Be terse."}]},
        user_parts("task prompt", URL),
    ]


def test_without_a_system_prompt_only_the_user_message_is_sent(server: FakeOpenAIServer) -> None:
    run_task(TextGenerationWithImage(name="vision", llm=openai_llm(server)), [{"instruction": "q", "image": URL}])
    assert received(server) == {"q": [user_parts("q", URL)]}


# -- bad images -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("image_type", "image", "error"),
    [
        ("url", None, "the row has no `image`."),
        ("url", "cat.jpg", "`image` must be a URL (http(s)://... or data:...), got 'cat.jpg'."),
        ("url", 42, "`image` must be a URL (http(s)://... or data:...), got 42."),
        ("base64", "not base64!", "`image` is not valid base64 (Only base64 data is allowed): 'not base64!'."),
        ("base64", "", "`image` is an empty base64 string."),
        ("base64", b"\x89PNG", "`image` must be a base64 string, got bytes."),
        ("PIL", URL, "`image` must be a PIL image, got str."),
    ],
)
def test_a_bad_image_fails_its_row_alone(server: FakeOpenAIServer, image_type: str, image: Any, error: str) -> None:
    good = {"url": URL, "base64": PNG}.get(image_type)
    rows = [{"instruction": "bad", "image": image}] + ([{"instruction": "good", "image": good}] if good else [])
    task = TextGenerationWithImage(name="vision", llm=openai_llm(server), image_type=image_type)  # type: ignore[arg-type]  # a str of the Literal
    bad, *others = run_task(task, rows)
    assert bad["generation"] is None and bad["model_name"] == "fake"
    assert bad[META]["error_vision"] == f"format_input failed: ValueError: {error}"
    assert [r["generation"] is not None for r in others] == [True] * len(others)
    assert list(received(server)) == ["good"] * len(others)


# -- a pipeline, on every executor ----------------------------------------------------------------
def test_a_pipeline_sends_the_images_and_keeps_a_bad_row_failed(
    server: FakeOpenAIServer, tmp_path: Path, executor: str, rows: Any
) -> None:
    data = [
        {"instruction": "first", "image": PNG},
        {"instruction": "broken", "image": "%%%"},
        {"instruction": "second", "image": JPEG},
    ]
    with Pipeline(name="vision", cache_dir=tmp_path, enable_metadata=True) as pipeline:
        task = TextGenerationWithImage(
            name="vision", llm=openai_llm(server), image_type="base64", system_prompt="Be terse.", input_batch_size=2
        )
        LoadDataFromDicts(name="load", data=data) >> task
    result = rows(pipeline.run(use_cache=False, executor=executor))

    assert [r["instruction"] for r in result] == ["first", "broken", "second"]
    assert image_urls(server) == {"first": f"data:image/png;base64,{PNG}", "second": f"data:image/jpeg;base64,{JPEG}"}
    assert all(messages[0] == {"role": "system", "content": "Be terse."} for messages in received(server).values())
    first, broken, second = result
    assert first["generation"].startswith("echo: [{'type': 'text', 'text': 'first'}")
    assert second["generation"].startswith("echo: [{'type': 'text', 'text': 'second'}")
    assert broken["generation"] is None
    assert broken[META]["error_vision"].startswith("format_input failed: ValueError: `image` is not valid base64")
    assert first[META]["error_vision"] is None and second[META]["error_vision"] is None


def test_the_task_round_trips_through_pipeline_yaml(tmp_path: Path) -> None:
    def build(image_type: str) -> Pipeline:
        with Pipeline(name="vision-yaml", cache_dir=tmp_path) as pipeline:
            llm = OpenAILLM(model="m", base_url="http://127.0.0.1:9/v1", api_key="k")
            task = TextGenerationWithImage(
                name="vision",
                llm=llm,
                image_type=image_type,  # type: ignore[arg-type]  # a str of the Literal
                template="Describe {{ thing }}.",
                columns="thing",
                system_prompt="Be terse.",
            )
            LoadDataFromDicts(name="load", data=[{"thing": "it", "image": PNG}]) >> task
        return pipeline

    pipeline = build("base64")
    [step] = [s for s in pipeline.dump()["pipeline"]["steps"] if s["name"] == "vision"]
    assert step["step"]["image_type"] == "base64"
    pipeline.save(tmp_path / "pipeline.yaml")
    again = Pipeline.from_yaml(tmp_path / "pipeline.yaml")
    reloaded = again.dag.step("vision")
    assert isinstance(reloaded, TextGenerationWithImage) and isinstance(reloaded.llm, OpenAILLM)
    assert (reloaded.image_type, reloaded.template, reloaded.columns) == ("base64", "Describe {{ thing }}.", ["thing"])
    assert reloaded.system_prompt == "Be terse."
    assert again.signature == pipeline.signature
    assert build("url").signature != pipeline.signature


# -- LLMs -----------------------------------------------------------------------------------------
def test_an_llm_that_renders_a_text_prompt_is_refused_when_the_task_is_created() -> None:
    with pytest.raises(
        ValueError,
        match=r"TextGenerationWithImage 'vision': TransformersLLM cannot pass images to its model \(it renders "
        r"the conversation into a text prompt\)\. Use an LLM of an OpenAI-compatible server",
    ):
        TextGenerationWithImage(name="vision", llm=TransformersLLM(model="some/model"))


class PartsLLM(LLM):
    """An LLM of one's own: it answers the type of each content part of the last message."""

    @property
    def model_name(self) -> str:
        return "parts"

    def generate(self, inputs: list[Any], num_generations: int = 1, **kwargs: Any) -> list[GenerateOutput]:
        answers = [" ".join(part["type"] for part in conversation[-1]["content"]) for conversation in inputs]
        stats = {"input_tokens": [1] * num_generations, "output_tokens": [1] * num_generations}
        return [{"generations": [a] * num_generations, "statistics": stats} for a in answers]  # type: ignore[misc]


def test_an_llm_of_ones_own_is_trusted_with_the_parts() -> None:
    [row] = run_task(TextGenerationWithImage(name="vision", llm=PartsLLM()), [{"instruction": "q", "image": URL}])
    assert row["generation"] == "text image_url"


def test_print_shows_the_prompt_of_a_placeholder_row(capsys: pytest.CaptureFixture[str]) -> None:
    TextGenerationWithImage(llm=PartsLLM(), system_prompt="Be terse.").print()
    out = capsys.readouterr().out
    assert "Prompt: TextGenerationWithImage" in out
    assert "Be terse." not in out  # a placeholder row's own system prompt wins, as in TextGeneration
    for placeholder in ["<PLACEHOLDER_SYSTEM_PROMPT>", "<PLACEHOLDER_INSTRUCTION>", "<PLACEHOLDER_IMAGE>"]:
        assert placeholder in out
