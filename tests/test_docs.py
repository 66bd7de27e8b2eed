"""The README's configuration reference is generated from the models and must match them."""

from pathlib import Path

from dataplatform.config_reference import END, START, reference

README = Path(__file__).resolve().parent.parent / "README.md"


def test_config_reference_is_in_sync():
    text = README.read_text()
    current = text[text.index(START): text.index(END) + len(END)]
    assert current == reference(), "run `make docs` to regenerate the configuration reference"


def test_readme_names_the_two_commands():
    text = README.read_text()
    assert "make synth" in text and "make test" in text
