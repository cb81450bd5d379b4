"""`ServeConfig`: every setting of `soritune serve`, in a module without fastapi (the CLI builds its
options from it; `soritune --help` stays light)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from soritune.config import StageConfig
from soritune.eval.hallucination_gate import GATE_HELP, GateMode, GateThresholds
from soritune.infer.options import MAX_NEW_TOKENS, DecodeOptions
from soritune.models.encoder import ENCODER_INPUT_HELP, EncoderInput


class ServeConfig(StageConfig):
    """Settings of `soritune serve` (each one a CLI flag)."""

    model: str = Field("bundled:whisper-base", description="model spec served (see `soritune --help`)")
    adapter: str | None = Field(None, description="PEFT adapter directory applied (merged) at load")
    backend: Literal["torch", "ct2"] = Field("torch", description="inference backend; ct2 is faster on CPU")
    device: str = Field("cpu", description="cpu or cuda")
    compute_type: str | None = Field(None, description="backend dtype (torch: float32|float16|bfloat16; ct2: int8...)")
    encoder_input: EncoderInput = Field("padded", description=ENCODER_INPUT_HELP)
    host: str = Field("127.0.0.1", description="interface to listen on")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0: any free port)")
    api_key: str | None = Field(None, description="if set, /v1/* requires `Authorization: Bearer KEY`")
    max_upload_mb: float = Field(25.0, gt=0, description="largest accepted upload, in MB (10^6 bytes); 25: the OpenAI API's limit")
    max_audio_s: float | None = Field(4 * 3600.0, gt=0, description="longest accepted audio after decoding")
    max_batch: int = Field(8, ge=1, le=256, description="most clips per model call; 1 turns micro-batching off")
    batch_window_ms: float = Field(20.0, ge=0, le=5000, description="how long a clip may wait for batch mates")
    max_new_tokens: int = Field(MAX_NEW_TOKENS, ge=1, le=MAX_NEW_TOKENS, description="token limit per <= 30 s chunk")
    language: str = Field("ko", description="language when a request names none (never auto-detected)")
    model_name: str | None = Field(None, description="model id reported by /v1/models (default: the spec)")
    max_concurrent_decodes: int = Field(2, ge=1, le=64, description="audio blocks decoded at once across all requests")
    max_chunks_per_request: int = Field(2, ge=1, le=256, description="most 30-s chunks of one request waiting for or in the model at once (lower: others wait less behind a long upload)")
    request_timeout_s: float | None = Field(1800.0, gt=0, description="a transcription still running after this gets 504 and its queued work is dropped")
    shutdown_grace_s: float = Field(30.0, ge=0, le=3600, description="on SIGTERM, how long running requests may finish before they get 503")
    header_timeout_s: float = Field(10.0, gt=0, description="a connection that has not sent a request's headers within this is closed")
    read_timeout_s: float = Field(30.0, gt=0, description="a request whose body stalls this long (no bytes) is closed")
    gate: GateMode = Field("off", description=GATE_HELP + "; run once the model is loaded, before serving")
    gate_thresholds: GateThresholds = Field(default_factory=GateThresholds, description="the gate's thresholds")
    decode: DecodeOptions = Field(default_factory=DecodeOptions, description="decoding (VAD, beam, fallback, ...); "
                                  "language and max_new_tokens come from the fields above, prompt etc. from requests")

    @property
    def model_id(self) -> str:
        return self.model_name or self.model

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1_000_000)
