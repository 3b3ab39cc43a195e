"""The procedural scene drawers: people where people should be, and unknown contents named."""

from __future__ import annotations

import numpy as np
import pytest

from styleboost.core.errors import StyleBoostError
from styleboost.styles.scenes import NON_PEOPLE_CONTENTS, PEOPLE_CONTENTS, Kind, draw_scene


def test_people_contents_have_skin_and_the_others_do_not():
    rng = np.random.default_rng(0)
    for content in PEOPLE_CONTENTS:
        assert draw_scene(content, 32, rng).mask(Kind.SKIN).mean() > 0.01
    for content in NON_PEOPLE_CONTENTS:
        assert not draw_scene(content, 32, rng).mask(Kind.SKIN).any()


def test_unknown_content_is_a_one_line_error():
    with pytest.raises(StyleBoostError, match="unknown toy content"):
        draw_scene("cat", 32, np.random.default_rng(0))
