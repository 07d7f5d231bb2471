"""The main demo: Deep Compression of LeNet-300-100 on MNIST-5k, then the report.

The demo recipe (``recipes/deep-compression-lenet300.yaml``) prunes gradually (global magnitude) while fine-tuning,
clusters the surviving weights by k-means (weight sharing) and trains the centroids; ``pack`` then stores positions,
codebook indices and entropy codes. It runs the same code path as ``modelpress compress`` and writes the compressed
file and the HTML report under ``out_dir``; the model is then loaded back from the file and evaluated, to show the
file is the model.

Example:
    >>> DEMO_RECIPE.name, DEMO_MODEL
    ('deep-compression-lenet300.yaml', 'zoo:lenet300')
"""

from __future__ import annotations

from pathlib import Path

from modelpress.errors import ConfigError

__all__ = ["DEMO_MODEL", "DEMO_RECIPE", "run_demo"]

RECIPES_DIR = Path(__file__).resolve().parents[1] / "recipes"
DEMO_RECIPE = RECIPES_DIR / "deep-compression-lenet300.yaml"
DEMO_MODEL = "zoo:lenet300"
DEMO_TASK = "mnist5k"


def run_demo(out_dir: Path, quiet: bool = False) -> int:
    """Run the demo recipe; print the report table, the file size, the reloaded accuracy and the HTML path."""
    from rich.console import Console

    from modelpress.cli import main

    if not DEMO_RECIPE.is_file():
        raise ConfigError("demo recipe", "recipes/ beside the package (run from a clone of the repository)",
                          f"<{DEMO_RECIPE} missing>", "run `make demo` from the repository root")
    out_file = out_dir / "lenet300.mpz"
    args = ["compress", DEMO_MODEL, "--task", DEMO_TASK, "--recipe", str(DEMO_RECIPE), "--out", str(out_file),
            "--report", str(out_dir)]
    code = main([*args, "--quiet"] if quiet else args)
    Console().print(f"\nReloading [bold]{out_file}[/] and evaluating it on the held-out split:")
    return code or main(["eval", str(out_file), "--task", DEMO_TASK])
