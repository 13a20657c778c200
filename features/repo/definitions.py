"""Entry point for the plain `feast` CLI (`cd features/repo && feast apply`): the objects come from
features.definitions; the source is $DRIFTLOOP_FEATURE_SOURCE or the generated baseline, made absolute."""

import os

from driftloop.config import get_settings
from features.definitions import build_definitions
from features.generator import resolve_dataset

_definitions = build_definitions(
    os.environ.get("DRIFTLOOP_FEATURE_SOURCE") or resolve_dataset("baseline"),
    model_name=get_settings().model_name,
)
applicant = _definitions.entity
credit_applications = _definitions.source
applicant_profile, credit_history, loan_request = _definitions.views
(credit_risk_v1,) = _definitions.services
