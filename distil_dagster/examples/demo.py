"""``make demo``: run the shipped example pipeline offline and print its Distiset."""

from __future__ import annotations

import os
from pathlib import Path

from distil_dagster.examples.pipelines import build_instructions_pipeline
from distil_dagster.examples.smol_pipeline import build_smol_pipeline


def main() -> None:
    """Run the examples (returned from the cache when `make demo` materialized them) and print them."""
    cache_dir = Path(os.environ.get("DISTIL_DAGSTER_CACHE_DIR", ".cache/pipelines"))
    for pipeline in (build_instructions_pipeline(cache_dir=cache_dir), build_smol_pipeline(cache_dir=cache_dir)):
        distiset = pipeline.run()
        print(f"\n=== {pipeline.name}\n{distiset}")
        for config, dataset_dict in distiset.items():
            print(f"\n{config}: first rows")
            for row in dataset_dict["train"].select(range(min(2, dataset_dict["train"].num_rows))):
                print(
                    " ",
                    {
                        k: (v[:100] + "..." if isinstance(v, str) and len(v) > 100 else v)
                        for k, v in row.items()
                        if k != "embedding"
                    },
                )
        print(f"\nCache folder: {Path(distiset.pipeline_path).parent if distiset.pipeline_path else cache_dir}")


if __name__ == "__main__":
    main()
