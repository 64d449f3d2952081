"""The headless core must never load Textual or the console (architecture rule 1)."""
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _loaded_after_import(code: str) -> set[str]:
    script = textwrap.dedent(code) + textwrap.dedent(
        """
        import sys, json
        print(json.dumps(sorted(sys.modules)))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    import json

    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_engine_and_analyzer_do_not_import_textual():
    pkgs = []
    for top in ("engine", "analyzer"):
        for path in sorted((ROOT / top).rglob("*.py")):
            mod = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            if mod.endswith("__main__"):
                continue
            pkgs.append(mod.removesuffix(".__init__"))
    assert pkgs, "no modules found"
    imports = "\n".join(f"import {m}" for m in pkgs)
    loaded = _loaded_after_import(imports)
    assert "engine" in loaded and "analyzer" in loaded
    offenders = sorted(m for m in loaded if m == "textual" or m.startswith("textual.") or m == "console" or m.startswith("console."))
    assert offenders == [], f"the headless core loaded {offenders[:5]}"


def test_cli_help_does_not_import_textual():
    loaded = _loaded_after_import(
        """
        from console.cli.main import cli
        try:
            cli.main(args=["--help"], standalone_mode=False)
        except SystemExit:
            pass
        """
    )
    assert "console.cli.main" in loaded
    assert "textual" not in loaded
