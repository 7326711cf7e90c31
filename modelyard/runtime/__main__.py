"""`python -m modelyard.runtime --image-dir DIR [--host H] [--port P]`."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from modelyard.runtime.app import ScoringApp
from modelyard.runtime.driver import load_driver


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m modelyard.runtime")
    parser.add_argument("--image-dir", type=Path, required=True, help="an image's build context")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "5001")))
    args = parser.parse_args(argv)

    image_dir: Path = args.image_dir.resolve()
    image = json.loads((image_dir / "image.json").read_text())
    os.environ.setdefault("AZUREML_MODEL_DIR", str(image_dir / image["modelDir"]))
    driver = load_driver(image_dir / image["driver"])
    driver.init()

    import uvicorn

    uvicorn.run(
        ScoringApp(driver), host=args.host, port=args.port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
