"""Write the sample rasters (byod.samples) to a folder: `python scripts/make_samples.py DIR`."""

from __future__ import annotations

import sys
from pathlib import Path

from byod.samples import write_samples

if __name__ == "__main__":
    for path in write_samples(Path(sys.argv[1] if len(sys.argv) > 1 else "samples")):
        print(path)
