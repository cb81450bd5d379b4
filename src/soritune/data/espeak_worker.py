"""A tiny process that owns libespeak-ng and forks a pristine child for every utterance.

libespeak-ng keeps static state (pitch flutter, noise generators) that carries from one utterance to
the next and that no API call resets (not even Terminate + Initialize), so the same text spoken twice
in one process differs slightly. This worker never loads the library itself; it forks a child per
request that loads it fresh: every child starts from the same state, so output depends only on the
arguments. A fork of this small single-threaded process costs about a millisecond.

Protocol (binary, over stdin/stdout): request = 4-byte length + UTF-8 JSON
{text, voice, rate, pitch, range}; response = 4-byte sample rate + 4-byte status + 4-byte length +
payload (int16 PCM when status is 0, UTF-8 error text otherwise).
"""

from __future__ import annotations

import ctypes
import json
import os
import struct
import sys

_AUDIO_OUTPUT_RETRIEVAL = 1
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE = 1, 2, 3, 4
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


def _read_exact(stream, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        part = stream.read(n - len(buf))
        if not part:
            raise EOFError
        buf += part
    return buf


def _load_library():
    import espeakng_loader

    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
        ctypes.c_uint, ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
    ]
    sample_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_RETRIEVAL, 0, espeakng_loader.get_data_path().encode(), 0)
    return lib, sample_rate


def _synth_child(req: dict) -> tuple[int, int, bytes]:
    """Runs in a fresh fork: load and initialise the library, speak once. Returns (rate, status, payload)."""
    lib, sample_rate = _load_library()
    if sample_rate <= 0:
        return 0, 1, b"libespeak-ng failed to initialise"
    if hasattr(lib, "espeak_ng_SetRandSeed"):  # breath noise of some voices is seeded from the clock
        lib.espeak_ng_SetRandSeed(ctypes.c_long(12345))
    status, payload = _speak(lib, req)
    return sample_rate, status, payload


def _speak(lib, req: dict) -> tuple[int, bytes]:
    chunks: list[bytes] = []

    def on_audio(wav, n, _events):
        if n > 0 and wav:
            chunks.append(ctypes.string_at(wav, n * 2))
        return 0

    cb = _CALLBACK(on_audio)
    lib.espeak_SetSynthCallback(cb)
    if lib.espeak_SetVoiceByName(req["voice"].encode()) != 0:
        return 2, f"espeak-ng could not load voice {req['voice']!r}".encode()
    lib.espeak_SetParameter(_PARAM_RATE, int(req["rate"]), 0)
    lib.espeak_SetParameter(_PARAM_PITCH, int(req["pitch"]), 0)
    lib.espeak_SetParameter(_PARAM_RANGE, int(req["range"]), 0)
    lib.espeak_SetParameter(_PARAM_VOLUME, 100, 0)
    data = req["text"].encode("utf-8") + b"\0"
    rc = lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None)
    if rc != 0:
        return 3, f"espeak-ng synthesis failed (code {rc})".encode()
    lib.espeak_Synchronize()
    return 0, b"".join(chunks)


def main() -> None:
    # The library is never loaded here: each forked child loads it fresh (it starts threads on
    # initialisation, and forking a process with live threads can deadlock).
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            (n,) = struct.unpack("<I", _read_exact(stdin, 4))
            req = json.loads(_read_exact(stdin, n))
        except EOFError:
            return
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: synthesise from the pristine state, hand the bytes back, exit
            os.close(r)
            try:
                sample_rate, status, payload = _synth_child(req)
            except Exception as e:  # noqa: BLE001 - report, never hang the parent
                sample_rate, status, payload = 0, 5, repr(e).encode()
            with os.fdopen(w, "wb") as out:
                out.write(struct.pack("<III", sample_rate, status, len(payload)) + payload)
            os._exit(0)
        os.close(w)
        with os.fdopen(r, "rb") as inp:
            head = inp.read(12)
            sample_rate, status, length = struct.unpack("<III", head) if len(head) == 12 else (0, 4, 0)
            payload = _read_exact(inp, length) if length else b"synthesis child died"
        os.waitpid(pid, 0)
        stdout.write(struct.pack("<III", sample_rate, status, len(payload)) + payload)
        stdout.flush()


if __name__ == "__main__":
    main()
