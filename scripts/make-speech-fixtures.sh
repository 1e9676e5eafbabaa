#!/usr/bin/env bash
# Regenerates test/fixtures/speech/: espeak-ng utterances after a silence lead-in, mixed with sox
# white/pink/brown noise at 30/20/10 dB SNR, noise-only beds, a mains hum, and an echo set for
# barge-in tests (bot speech as the outbound; inbound = that speech delayed and attenuated, with
# and without a caller talking over it). Output: 8 kHz mono G.711 mu-law WAV + manifest.json
# (levels, SNRs, reference onsets). CI has neither espeak-ng nor sox, so the outputs are committed;
# run this only to change them, then re-run test/dsp/vad.test.ts.
#
# Deterministic: sox runs with -R (fixed random seed) and -D (no dither), espeak-ng is
# deterministic for a given version (1.51 made the committed set; another version may move the
# reference onsets by a block or two, which the manifest records, so tests still agree with it).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v espeak-ng >/dev/null || { echo "espeak-ng is required (apt-get install espeak-ng)"; exit 1; }
command -v sox >/dev/null || { echo "sox is required (apt-get install sox)"; exit 1; }

OUT=test/fixtures/speech
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"

# id | voice | words/min | active level dBFS | lead-in ms | text
UTTS=(
  "u1|en-us|165|-20|700|Hello, I need an appointment."
  "u2|en-gb+f3|160|-23|900|Can I change my booking?"
  "u3|en-gb-scotland+m3|160|-26|1200|Sorry, could you say that again?"
)
BOT="en-us+f4|170|-20|Thank you for calling. How can I help you today?"
CALLER="en-us-nyc|165|-22|Wait, I need to cancel it."

# espeak-ng speaks at 22.05 kHz: band-limit like a handset (high-pass 150 Hz) and resample with
# sox's steep anti-alias filter to 8 kHz, 16-bit, no dither.
synth() { # out voice wpm text
  espeak-ng -v "$2" -s "$3" -w "$WORK/$1_22k.wav" "$4"
  sox -D "$WORK/$1_22k.wav" -b 16 -c 1 "$WORK/$1.wav" highpass 150 rate -v 8000
}

json_utts=""
for u in "${UTTS[@]}"; do
  IFS='|' read -r id voice wpm level lead text <<<"$u"
  synth "$id" "$voice" "$wpm" "$text"
  json_utts+="${json_utts:+,}{\"id\":\"$id\",\"voice\":\"$voice\",\"text\":\"$text\",\"levelDbfs\":$level,\"leadInMs\":$lead}"
done
IFS='|' read -r bvoice bwpm blevel btext <<<"$BOT"
synth bot "$bvoice" "$bwpm" "$btext"
IFS='|' read -r cvoice cwpm clevel ctext <<<"$CALLER"
synth caller "$cvoice" "$cwpm" "$ctext"

# 60 s of each noise colour; the helper takes distinct stretches of it for every use.
for c in white pink brown; do
  sox -R -D -n -r 8000 -c 1 -b 16 "$WORK/noise_$c.wav" synth 60 "${c}noise"
done

cat >"$WORK/plan.json" <<EOF
{"utterances":[$json_utts],"early":"u3",
 "bot":{"voice":"$bvoice","text":"$btext","levelDbfs":$blevel},
 "caller":{"voice":"$cvoice","text":"$ctext","levelDbfs":$clevel}}
EOF

npx tsx scripts/fixtures-speech.ts build "$WORK"

rm -f "$OUT"/*.wav "$OUT"/manifest.json
for f in "$WORK"/out16/*.wav; do
  sox -D "$f" -e u-law -b 8 "$OUT/$(basename "$f")"
done
npx tsx scripts/fixtures-speech.ts refs "$WORK" "$OUT"
du -ch "$OUT"/* | tail -1
