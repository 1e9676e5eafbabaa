#!/bin/sh
# Regenerates test/fixtures/wav/ (tiny WAVs for test/audio/wav.test.ts). Needs sox (apt) and python3.
# Each .wav that tests read for content has a headerless sidecar written by sox itself
# (.s16le / .ul / .al), so the tests compare our parser against sox, not against our own code.
set -eu
cd "$(dirname "$0")/../test/fixtures/wav"
S="sox -D -R"   # no dither, fixed random seed: reproducible output

$S -n -r 8000 -b 16 -c 1 pcm16-8k-mono.wav synth 0.05 sine 440 vol 0.5
$S pcm16-8k-mono.wav -t raw -e signed-integer -b 16 -L pcm16-8k-mono.s16le

$S -n -r 16000 -b 16 -c 1 pcm16-16k-mono.wav synth 0.02 sine 1000 vol 0.5
$S pcm16-16k-mono.wav -t raw -e signed-integer -b 16 -L pcm16-16k-mono.s16le

$S -n -r 8000 -b 16 -c 2 pcm16-8k-stereo.wav synth 0.02 sine 440 sine 880 vol 0.5
$S pcm16-8k-stereo.wav -t raw -e signed-integer -b 16 -L pcm16-8k-stereo.s16le

# sox writes WAVE_FORMAT_EXTENSIBLE for more than 2 channels.
$S -n -r 8000 -b 16 -c 3 pcm16-8k-3ch-extensible.wav synth 0.01 sine 300 sine 600 sine 900 vol 0.5
$S pcm16-8k-3ch-extensible.wav -t raw -e signed-integer -b 16 -L pcm16-8k-3ch-extensible.s16le

$S pcm16-8k-mono.wav -e u-law mulaw-8k.wav
$S mulaw-8k.wav -t ul mulaw-8k.ul
$S pcm16-8k-mono.wav -e a-law alaw-8k.wav
$S alaw-8k.wav -t al alaw-8k.al

# Unsupported on purpose: each must fail with a clear error.
$S pcm16-8k-mono.wav -e floating-point -b 32 float32.wav
$S pcm16-8k-mono.wav -b 24 pcm24.wav
$S pcm16-8k-mono.wav -e unsigned-integer -b 8 pcm8.wav
$S pcm16-8k-mono.wav -e ms-adpcm adpcm.wav

# A LIST/INFO chunk between fmt and data (sox cannot write one into WAV): must be skipped.
python3 - <<'PY'
import struct
b = open('pcm16-8k-mono.wav', 'rb').read()
assert b[36:40] == b'data', b[36:40]
text = b'voicebridge\0'
info = b'INFO' + b'ICMT' + struct.pack('<I', len(text)) + text
lst = b'LIST' + struct.pack('<I', len(info)) + info
body = b[12:36] + lst + b[36:]
open('pcm16-8k-list.wav', 'wb').write(b'RIFF' + struct.pack('<I', 4 + len(body)) + b'WAVE' + body)
PY
ls -l
