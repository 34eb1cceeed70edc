"""``make demo``: run the shipped example pipeline offline and print its Distiset."""

from __future__ import annotations

import os
from pathlib import Path

from distil_dagster.examples.pipelines import build_instructions_pipeline


def main() -> None:
    """Run the example (resuming from the cache if it already ran) and print what it produced."""
    cache_dir = Path(os.environ.get("DISTIL_DAGSTER_CACHE_DIR", ".cache/pipelines"))
    pipeline = build_instructions_pipeline(cache_dir=cache_dir)
    distiset = pipeline.run()
    print(distiset)
    for config, dataset_dict in distiset.items():
        print(f"\n{config}: first rows")
        for row in dataset_dict["train"].select(range(min(3, dataset_dict["train"].num_rows))):
            print(" ", row)
    print(f"\nCache folder: {Path(distiset.pipeline_path).parent if distiset.pipeline_path else cache_dir}")


if __name__ == "__main__":
    main()
