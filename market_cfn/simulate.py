"""`market_cfn.simulate`: the documented import path of the local Pipeline, which lives in
market_cfn.local.pipeline. This module *is* that module (one object), so names, patches and
isinstance checks behave the same from either path."""

import sys

from market_cfn.local import pipeline as _pipeline

sys.modules[__name__] = _pipeline
