"""One home for writing a benchmark's table into its marked block of benchmarks/README.md."""

import re
from pathlib import Path

README = Path(__file__).with_name("README.md")


def write_block(name: str, text: str) -> None:
    """Replaces the block between ``<!-- name:start -->`` and ``<!-- name:end -->`` (appends it if absent).

    The file is read at the moment of writing: other scripts write other blocks of the same file.
    """
    content = README.read_text()
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{text}{end}"
    if start in content:
        content = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, content, flags=re.S)
    else:
        content += "\n" + block + "\n"
    README.write_text(content)
