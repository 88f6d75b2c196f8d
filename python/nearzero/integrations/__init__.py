"""Ways into the training frameworks people use: `transformers.NearZeroCallback` (HuggingFace
`Trainer`), `lightning.NearZeroCallback` (Lightning `Trainer`) and `tensorboard.log_recorder`
(behind `GradientRecorder.log_to`). Each module imports its framework; this package imports
none of them, so `import nearzero` never does.
"""
