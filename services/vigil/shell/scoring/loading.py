"""Give a runtime its model stage, or rules alone with the reason: one place for every runtime."""

from __future__ import annotations

import logging
from pathlib import Path

from vigil.shell.scoring.serving import ModelLoadError, OnnxScoringStage, load_model_set

log = logging.getLogger("vigil.scoring")


def model_stage_for(enabled: bool, model_dir: Path | None) -> tuple[OnnxScoringStage | None, dict[str, object]]:
    """(stage, status for /healthz). A missing or corrupt model is logged and reported, never fatal."""
    if not enabled:
        return None, {"enabled": False, "loaded": False}
    try:
        models = load_model_set(model_dir)
    except ModelLoadError as exc:
        log.error("models not loaded: scoring with rules alone", extra={"error": str(exc)})
        return None, {"enabled": True, "loaded": False, "error": str(exc)}
    log.info("models loaded", extra={"model_version": models.version})
    return OnnxScoringStage(models), {"enabled": True, "loaded": True, "version": models.version,
                                      "directory": str(models.directory)}
