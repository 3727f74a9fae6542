"""Serving the learned models: ONNX sessions loaded once, batched scoring across patients.

`load_model_set(dir)` reads models/artifacts (or any directory with the same files) and fails
with a clear `ModelLoadError`; `OnnxScoringStage` is the pipeline's model stage.
"""

from vigil.shell.scoring.serving import ModelLoadError, ModelSet, OnnxScoringStage, ScoreRecord, default_model_dir, load_model_set

__all__ = ["ModelLoadError", "ModelSet", "OnnxScoringStage", "ScoreRecord", "default_model_dir", "load_model_set"]
