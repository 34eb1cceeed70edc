"""Formatting steps: ConversationTemplate, SFT and DPO formats, row by row and in pipelines.

Every expected row is a literal taken from distilabel 1.5.3 run on the same input rows (the
``prompt_id`` values included), except where a test says distil_dagster chooses otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from distil_dagster.engine.config import EngineConfig
from distil_dagster.pipeline import Pipeline
from distil_dagster.steps import LoadDataFromDicts
from distil_dagster.steps.formatting import (
    ConversationTemplate,
    FormatChatGenerationDPO,
    FormatChatGenerationSFT,
    FormatTextGenerationDPO,
    FormatTextGenerationSFT,
)

# sha256 of the UTF-8 prompt, as printed by distilabel 1.5.3
ID_2_PLUS_2 = "7762ecf17ad41479767061a8f4a7bfa3b63d371672af5180872f9b82b4cd4e29"  # "What's 2+2?"
ID_COLOUR = "4eef85d027f3c3513fc7c8aa407376f15916cbedc2c9e79f83130c8827389e26"  # "Name a colour."
ID_HI = "3639efcd08abb273b1619e82e78c29a7df02c1051b1820e99fc395dcaa3326b8"  # "Hi"
ID_UNICODE = "e53e33d6877c2167e73dc42e7bf69eb8d9e2da463bdbac3c876d6eecf3daa16e"  # "¿Qué tal? 日本"
ID_HELLO = "185f8db32271fe25f561a6fc938b2e264306ec304eda518007d1764826381969"  # "Hello"
ID_FIRST = "a151ceb1711aad529a7704248f03333990022ebbfa07a7f04c004d70c167919f"  # "First"
ID_Q = "8e35c2cd3bf6641bdb0e2050b76932cbb2e6034a0ddacc1d9bea82a6ba57f7cf"  # "q"
ID_SAME = "0967115f2813a3541eaef77de9d9d5773f1c0c04314b0bbfe4ff3b3b1c55b5d5"  # "same"
ID_ONE = "7692c3ad3540bb803c020b3aee66cd8887123234ea0c6e7143c0add73ff431ed"  # "one"
ID_FLOATS = "4b379441613442e9bd746f463554d9e27aa22d4d4aa4aa7c84f3192997bc2200"  # "floats"
ID_FRANCE = "221acfeb028204b9565adf8ef233b883e07b26e68056c185a3f4a7718547a617"  # "Capital of France?"
ID_2P2 = "30ad205245cd25231f697fa8934fdf8d65d0cb24040d9f0d4106fa4cfc68e4c7"  # "2+2?"
ID_A = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"  # "a"
ID_B = "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d"  # "b"


def system(content: Any) -> dict[str, Any]:
    return {"role": "system", "content": content}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def assistant(content: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": content}


def run_step(step: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    step.load()
    return next(step.process_applying_mappings([dict(r) for r in rows]))


# -- declared columns ----------------------------------------------------------------------------
def test_declared_columns_are_distilabels() -> None:
    dpo_outputs = [
        "prompt",
        "prompt_id",
        "chosen",
        "chosen_model",
        "chosen_rating",
        "rejected",
        "rejected_model",
        "rejected_rating",
    ]

    assert ConversationTemplate().inputs == ["instruction", "response"]
    assert ConversationTemplate().outputs == ["conversation"]
    assert FormatTextGenerationSFT().inputs == {"system_prompt": False, "instruction": True, "generation": True}
    assert FormatTextGenerationSFT().optional_inputs == ["system_prompt"]
    assert FormatTextGenerationSFT().outputs == ["prompt", "prompt_id", "messages"]
    assert FormatChatGenerationSFT().inputs == ["messages", "generation"]
    assert FormatChatGenerationSFT().outputs == ["prompt", "prompt_id", "messages"]
    assert FormatTextGenerationDPO().get_inputs() == {
        "system_prompt": False,
        "instruction": True,
        "generations": True,
        "generation_models": False,
        "ratings": True,
    }
    assert FormatTextGenerationDPO().optional_inputs == ["system_prompt", "generation_models"]
    assert FormatTextGenerationDPO().outputs == dpo_outputs
    assert FormatChatGenerationDPO().inputs == ["messages", "generations", "ratings"]
    assert FormatChatGenerationDPO().optional_inputs == ["generation_models"]
    assert FormatChatGenerationDPO().outputs == dpo_outputs


# -- ConversationTemplate ------------------------------------------------------------------------
def test_conversation_template_builds_a_user_assistant_chat() -> None:
    rows = [{"instruction": "Hello", "response": "Hi"}, {"instruction": "Q", "response": None, "conversation": "old"}]

    result = run_step(ConversationTemplate(), rows)

    assert result == [
        {"instruction": "Hello", "response": "Hi", "conversation": [user("Hello"), assistant("Hi")]},
        {"instruction": "Q", "response": None, "conversation": [user("Q"), assistant(None)]},
    ]
    assert list(result[1]) == ["instruction", "response", "conversation"]


# -- SFT -----------------------------------------------------------------------------------------
def test_text_sft_adds_the_system_prompt_only_when_it_is_a_non_empty_string() -> None:
    rows = [
        {"instruction": "What's 2+2?", "generation": "4"},
        {"system_prompt": "You are terse.", "instruction": "Name a colour.", "generation": "Blue"},
        {"system_prompt": "", "instruction": "Hi", "generation": None},
        {"system_prompt": None, "instruction": "¿Qué tal? 日本", "generation": "Bien"},
    ]

    result = run_step(FormatTextGenerationSFT(), rows)

    assert result == [
        {
            "instruction": "What's 2+2?",
            "generation": "4",
            "prompt": "What's 2+2?",
            "prompt_id": ID_2_PLUS_2,
            "messages": [user("What's 2+2?"), assistant("4")],
        },
        {
            "system_prompt": "You are terse.",
            "instruction": "Name a colour.",
            "generation": "Blue",
            "prompt": "Name a colour.",
            "prompt_id": ID_COLOUR,
            "messages": [system("You are terse."), user("Name a colour."), assistant("Blue")],
        },
        {
            "system_prompt": "",
            "instruction": "Hi",
            "generation": None,
            "prompt": "Hi",
            "prompt_id": ID_HI,
            "messages": [user("Hi"), assistant(None)],
        },
        {
            "system_prompt": None,
            "instruction": "¿Qué tal? 日本",
            "generation": "Bien",
            "prompt": "¿Qué tal? 日本",
            "prompt_id": ID_UNICODE,
            "messages": [user("¿Qué tal? 日本"), assistant("Bien")],
        },
    ]
    assert list(result[0]) == ["instruction", "generation", "prompt", "prompt_id", "messages"]


def test_chat_sft_takes_the_first_user_message_as_prompt_and_appends_the_generation() -> None:
    rows = [
        {"messages": [system("Be kind."), user("Hello")], "generation": "Hi there"},
        {"messages": [user("First"), assistant("A"), user("Second")], "generation": "B"},
    ]

    result = run_step(FormatChatGenerationSFT(), rows)

    assert result == [
        {
            "messages": [system("Be kind."), user("Hello"), assistant("Hi there")],
            "generation": "Hi there",
            "prompt": "Hello",
            "prompt_id": ID_HELLO,
        },
        {
            "messages": [user("First"), assistant("A"), user("Second"), assistant("B")],
            "generation": "B",
            "prompt": "First",
            "prompt_id": ID_FIRST,
        },
    ]
    assert rows[0]["messages"] == [system("Be kind."), user("Hello")]  # the input chat is not changed


def test_sft_refuses_rows_without_a_string_prompt() -> None:
    with pytest.raises(ValueError, match=r"Step 'sft': the prompt must be a string to compute prompt_id, got NoneType"):
        run_step(FormatTextGenerationSFT(name="sft"), [{"instruction": None, "generation": "x"}])
    with pytest.raises(ValueError, match=r"Step 'chat': .* got NoneType \(a chat without a user message"):
        run_step(FormatChatGenerationSFT(name="chat"), [{"messages": [system("s")], "generation": "x"}])
    with pytest.raises(ValueError, match=r"Step 'chat': messages must be a list .* got NoneType"):
        run_step(FormatChatGenerationSFT(name="chat"), [{"messages": None, "generation": "x"}])


# -- DPO -----------------------------------------------------------------------------------------
def test_text_dpo_picks_the_first_best_and_first_worst_rated_generations() -> None:
    rows = [
        {"instruction": "What's 2+2?", "generations": ["4", "5", "6"], "ratings": [1, 0, -1]},
        {
            "system_prompt": "sys",
            "instruction": "q",
            "generations": ["a", "b", "c", "d"],
            "generation_models": ["m1", "m2", "m3", "m4"],
            "ratings": [2, 2, 1, 1],
        },
        {"instruction": "floats", "generations": ["p", "q", "r"], "ratings": [0.5, 4.5, 4.5]},
    ]

    result = run_step(FormatTextGenerationDPO(), rows)

    assert result == [
        {
            **rows[0],
            "prompt": "What's 2+2?",
            "prompt_id": ID_2_PLUS_2,
            "chosen": [user("What's 2+2?"), assistant("4")],
            "chosen_rating": 1,
            "rejected": [user("What's 2+2?"), assistant("6")],
            "rejected_rating": -1,
        },
        {
            **rows[1],
            "prompt": "q",
            "prompt_id": ID_Q,
            "chosen": [system("sys"), user("q"), assistant("a")],
            "chosen_model": "m1",
            "chosen_rating": 2,
            "rejected": [system("sys"), user("q"), assistant("c")],
            "rejected_model": "m3",
            "rejected_rating": 1,
        },
        {
            **rows[2],
            "prompt": "floats",
            "prompt_id": ID_FLOATS,
            "chosen": [user("floats"), assistant("q")],
            "chosen_rating": 4.5,
            "rejected": [user("floats"), assistant("p")],
            "rejected_rating": 0.5,
        },
    ]
    assert list(result[1])[5:] == [
        "prompt",
        "prompt_id",
        "chosen",
        "chosen_model",
        "chosen_rating",
        "rejected",
        "rejected_model",
        "rejected_rating",
    ]


def test_text_dpo_with_equal_ratings_or_one_rating_chooses_and_rejects_the_first_generation() -> None:
    rows = [
        {"instruction": "same", "generations": ["x", "y"], "ratings": [3, 3]},
        {"instruction": "one", "generations": ["only"], "ratings": [None]},
    ]

    result = run_step(FormatTextGenerationDPO(), rows)

    columns = ("prompt_id", "chosen", "chosen_rating", "rejected", "rejected_rating")
    assert [{k: r[k] for k in columns} for r in result] == [
        {
            "prompt_id": ID_SAME,
            "chosen": [user("same"), assistant("x")],
            "chosen_rating": 3,
            "rejected": [user("same"), assistant("x")],
            "rejected_rating": 3,
        },
        {
            "prompt_id": ID_ONE,
            "chosen": [user("one"), assistant("only")],
            "chosen_rating": None,
            "rejected": [user("one"), assistant("only")],
            "rejected_rating": None,
        },
    ]


def test_chat_dpo_appends_the_chosen_and_rejected_generations_to_the_chat() -> None:
    rows = [
        {
            "messages": [system("Be brief."), user("Capital of France?")],
            "generations": ["Paris", "Lyon"],
            "generation_models": ["big", "small"],
            "ratings": [5, 2],
        },
        {"messages": [user("2+2?")], "generations": ["5", "4", "4"], "ratings": [1, 4, 4]},
    ]

    result = run_step(FormatChatGenerationDPO(), rows)

    assert result == [
        {
            **rows[0],
            "prompt": "Capital of France?",
            "prompt_id": ID_FRANCE,
            "chosen": [system("Be brief."), user("Capital of France?"), assistant("Paris")],
            "chosen_model": "big",
            "chosen_rating": 5,
            "rejected": [system("Be brief."), user("Capital of France?"), assistant("Lyon")],
            "rejected_model": "small",
            "rejected_rating": 2,
        },
        {
            **rows[1],
            "prompt": "2+2?",
            "prompt_id": ID_2P2,
            "chosen": [user("2+2?"), assistant("4")],
            "chosen_rating": 4,
            "rejected": [user("2+2?"), assistant("5")],
            "rejected_rating": 1,
        },
    ]


def test_dpo_refuses_ratings_it_cannot_rank() -> None:
    step = FormatTextGenerationDPO(name="dpo")
    row = {"instruction": "q", "generations": ["a", "b"]}

    with pytest.raises(ValueError, match=r"Step 'dpo': ratings \[None, 3\] contain None and cannot be ranked"):
        run_step(step, [{**row, "ratings": [None, 3]}])
    with pytest.raises(ValueError, match=r"Step 'dpo': ratings must be a non-empty list, got \[\]"):
        run_step(step, [{**row, "ratings": []}])
    with pytest.raises(ValueError, match=r"Step 'dpo': ratings must be a non-empty list, got None"):
        run_step(step, [{**row, "ratings": None}])
    with pytest.raises(ValueError, match=r"Step 'dpo': generations \['a', 'b'\] must have a generation for each"):
        run_step(step, [{**row, "ratings": [1, 2, 3]}])


def test_dpo_gives_none_models_when_generation_models_is_none() -> None:
    # distilabel raises here; rows read back from Parquet hold None where a key was missing.
    row = {"messages": [user("q")], "generations": ["a", "b"], "generation_models": None, "ratings": [1, 2]}

    result = run_step(FormatChatGenerationDPO(), [row])

    assert (result[0]["chosen_model"], result[0]["rejected_model"]) == (None, None)
    assert (result[0]["chosen"][-1], result[0]["rejected"][-1]) == (assistant("b"), assistant("a"))


# -- pipelines -----------------------------------------------------------------------------------
def test_sft_and_conversation_steps_in_a_pipeline(tmp_path: Path, executor: str, rows) -> None:
    data = [
        {"system_prompt": "You are terse.", "instruction": "Name a colour.", "generation": "Blue"},
        {"system_prompt": "", "instruction": "Hi", "generation": "Hello!"},
        {"system_prompt": "", "instruction": "What's 2+2?", "generation": "4"},
    ]
    with Pipeline(name="sft", cache_dir=tmp_path, seed=0) as pipeline:
        sft = FormatTextGenerationSFT(name="sft", input_batch_size=2)
        conversation = ConversationTemplate(name="conversation", input_mappings={"response": "generation"})
        LoadDataFromDicts(name="load", data=data, batch_size=2) >> sft >> conversation

    result = rows(pipeline.run(executor=executor))

    assert [(r["prompt_id"], r["messages"], r["conversation"]) for r in result] == [
        (
            ID_COLOUR,
            [system("You are terse."), user("Name a colour."), assistant("Blue")],
            [user("Name a colour."), assistant("Blue")],
        ),
        (ID_HI, [user("Hi"), assistant("Hello!")], [user("Hi"), assistant("Hello!")]),
        (ID_2_PLUS_2, [user("What's 2+2?"), assistant("4")], [user("What's 2+2?"), assistant("4")]),
    ]
    assert result[0]["generation"] == "Blue"  # the mapped input keeps its upstream name


def test_dpo_steps_in_a_pipeline(tmp_path: Path, executor: str, rows) -> None:
    data = [
        {"instruction": "a", "generations": ["x", "y"], "generation_models": ["m", "n"], "ratings": [1, 2]},
        {"instruction": "b", "generations": ["x", "y"], "generation_models": ["m", "n"], "ratings": [2, 1]},
        {"instruction": "q", "generations": ["x", "y"], "generation_models": ["m", "n"], "ratings": [3, 3]},
    ]
    with Pipeline(name="dpo", cache_dir=tmp_path, seed=0) as pipeline:
        dpo = FormatTextGenerationDPO(name="dpo", input_batch_size=2, output_mappings={"chosen_model": "winner"})
        LoadDataFromDicts(name="load", data=data, batch_size=2) >> dpo

    result = rows(pipeline.run(executor=executor))

    assert [(r["prompt_id"], r["chosen"], r["winner"], r["rejected"], r["rejected_rating"]) for r in result] == [
        (ID_A, [user("a"), assistant("y")], "n", [user("a"), assistant("x")], 1),
        (ID_B, [user("b"), assistant("x")], "m", [user("b"), assistant("y")], 1),
        (ID_Q, [user("q"), assistant("x")], "m", [user("q"), assistant("x")], 3),
    ]


def test_dpo_batch_with_unrankable_ratings_gets_none_outputs_as_in_distilabel(tmp_path: Path, rows) -> None:
    # distilabel 1.5.3 on these rows (batches of 2): rows c and d get None in every output column.
    data = [
        {"instruction": "a", "generations": ["x", "y"], "ratings": [1, 2]},
        {"instruction": "b", "generations": ["x", "y"], "ratings": [2, 1]},
        {"instruction": "c", "generations": ["x", "y"], "ratings": [None, 1]},
        {"instruction": "d", "generations": ["x", "y"], "ratings": [3, 3]},
    ]
    with Pipeline(name="dpo-none", cache_dir=tmp_path, enable_metadata=True, seed=0) as pipeline:
        dpo = FormatTextGenerationDPO(name="dpo", input_batch_size=2)
        LoadDataFromDicts(name="load", data=data, batch_size=2) >> dpo

    result = rows(pipeline.run(executor="inline", config=EngineConfig(step_retries=0)))

    outputs = ("prompt", "prompt_id", "chosen", "chosen_rating", "rejected", "rejected_rating")
    assert [tuple(r[c] for c in outputs) for r in result] == [
        ("a", ID_A, [user("a"), assistant("y")], 2, [user("a"), assistant("x")], 1),
        ("b", ID_B, [user("b"), assistant("x")], 2, [user("b"), assistant("y")], 1),
        (None,) * 6,
        (None,) * 6,
    ]
    assert "contain None and cannot be ranked" in result[2]["distilabel_metadata"]["error_dpo"]
