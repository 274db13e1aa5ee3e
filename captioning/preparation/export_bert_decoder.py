"""The BERT-style decoder families at build time: vision-encoder-decoder with a BERT decoder (vit-bert)
and BLIP (Salesforce/blip-image-captioning-*), whose text decoder is the same transformer.

Graphs: captioning/preparation/graphs_bert_decoder.py; run time: captioning/function/onnx_bert_decoder.py.
BLIP's `generate` runs its text decoder's own `generate` with the text decoder's generation config (not
the saved generation_config.json), sep as eos and the text config's pad; its prompt is the processor's
`[CLS] prompt [SEP]` with [CLS] swapped for the decoder's bos and [SEP] dropped, and the captions cut
that prompt off (captioning/function/generic_captioner.py, the torch runtime, does the same).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from captioning.preparation.export_vit_gpt2 import (
    VisionEncoderDecoderExporter,
    checked_pixels,
    encoder_problems,
    generation_dict,
)
from captioning.preparation.family_export import FamilyExporter, Loaded
from captioning.preparation.graphs_bert_decoder import VOCABULARY

SUPPORTED_ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "quick_gelu", "relu", "tanh")
BLIP_CHECK_PROMPT = "a picture of"


def text_decoder_problems(config: object, *, what: str) -> list[str]:
    """What in a BERT-style decoder config the step graph does not reproduce."""
    problems = []
    position = getattr(config, "position_embedding_type", "absolute")
    if position not in (None, "absolute"):
        problems.append(f"{what} position_embedding_type={position!r} (supported: absolute)")
    if config.hidden_act not in SUPPORTED_ACTIVATIONS:
        problems.append(
            f"{what} activation {config.hidden_act!r} (supported: {', '.join(SUPPORTED_ACTIVATIONS)})"
        )
    if not getattr(config, "is_decoder", False):
        problems.append(f"{what} is_decoder=False (a decoder is needed)")
    return problems


def _cross_kv_problems(config: object, what: str) -> list[str]:
    if not getattr(config, "add_cross_attention", True):
        return [f"a {what} without cross-attention"]
    return []


def _bert_manifest(step_config: object, start: int, pixels: dict) -> dict:
    heads = step_config.num_attention_heads
    return {
        "layers": step_config.num_hidden_layers,
        "heads": heads,
        "head_dim": step_config.hidden_size // heads,
        "decoder_start_token_id": int(start),
        "max_position_embeddings": step_config.max_position_embeddings,
        "pixels": pixels,
    }


def _example_pixels(loaded: Loaded, image_processor: object):
    import torch

    images = [Image.new("RGB", (40, 30), (200, 10, 10)), Image.new("RGB", (20, 50), (10, 10, 200))]
    return torch.from_numpy(image_processor(images=images, return_tensors="np").pixel_values)


class VitBertExporter(VisionEncoderDecoderExporter):
    family = "vit-bert"
    shared_vocabulary = VOCABULARY

    def problems(self, config: object) -> list[str]:
        decoder = config.decoder
        problems = encoder_problems(config.encoder)
        problems += text_decoder_problems(decoder, what="BERT decoder")
        problems += _cross_kv_problems(decoder, "BERT decoder")
        if getattr(decoder, "cross_attention_hidden_size", None) is not None:
            problems.append(
                f"decoder.cross_attention_hidden_size={decoder.cross_attention_hidden_size}"
                " (an encoder-to-decoder projection other than the default one)"
            )
        return problems

    def manifest(self, loaded: Loaded) -> dict:
        config = loaded.model.config.decoder
        return _bert_manifest(
            config, loaded.generation_config["decoder_start_token_id"], checked_pixels(loaded.processor)
        )

    def export_graphs(self, loaded: Loaded, directory: Path, *, opset: int) -> dict[str, str]:
        from captioning.preparation.graphs_bert_decoder import (
            BertDecoderStep,
            ImageToCrossKeysValues,
            export_bert_decoder_graphs,
        )

        model = loaded.model
        projects = (
            model.encoder.config.hidden_size != model.decoder.config.hidden_size
            and getattr(model.decoder.config, "cross_attention_hidden_size", None) is None
        )
        layers = model.decoder.bert.encoder.layer
        image_graph = ImageToCrossKeysValues(
            model.encoder,
            model.enc_to_dec_proj if projects else None,
            layers,
            model.decoder.config.num_attention_heads,
        )
        step = BertDecoderStep(model.decoder)
        pixels = _example_pixels(loaded, loaded.processor)
        return export_bert_decoder_graphs(image_graph, step, pixels, directory, opset=opset)


class BlipExporter(FamilyExporter):
    family = "blip"
    verify_prompts = (None, BLIP_CHECK_PROMPT)
    shared_vocabulary = VOCABULARY

    def problems(self, config: object) -> list[str]:
        text = config.text_config
        problems = text_decoder_problems(text, what="BLIP text decoder")
        if getattr(text, "sep_token_id", None) is None or getattr(text, "bos_token_id", None) is None:
            problems.append("a BLIP text config without bos_token_id and sep_token_id")
        return problems

    def load(self, source: Path) -> Loaded:
        import torch
        from transformers import (
            AutoImageProcessor,
            AutoTokenizer,
            BlipForConditionalGeneration,
            BlipProcessor,
        )

        model = BlipForConditionalGeneration.from_pretrained(
            source, local_files_only=True, dtype=torch.float32
        )
        model.eval()
        image_processor = AutoImageProcessor.from_pretrained(source, backend="pil", local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
        processor = BlipProcessor(image_processor, tokenizer)
        text = model.config.text_config
        # What BlipForConditionalGeneration.generate hands its text decoder's generate.
        generation = generation_dict(model.text_decoder.generation_config)
        generation |= {
            "bos_token_id": int(text.bos_token_id),
            "decoder_start_token_id": int(text.bos_token_id),
            "eos_token_id": int(text.sep_token_id),
            "pad_token_id": None if text.pad_token_id is None else int(text.pad_token_id),
        }
        return Loaded(model, processor, tokenizer, generation)

    def manifest(self, loaded: Loaded) -> dict:
        text = loaded.model.config.text_config
        pixels = checked_pixels(loaded.processor.image_processor)
        return _bert_manifest(text, text.bos_token_id, pixels)

    def export_graphs(self, loaded: Loaded, directory: Path, *, opset: int) -> dict[str, str]:
        from captioning.preparation.graphs_bert_decoder import (
            BertDecoderStep,
            ImageToCrossKeysValues,
            export_bert_decoder_graphs,
        )

        model = loaded.model
        decoder = model.text_decoder
        layers = decoder.bert.encoder.layer
        image_graph = ImageToCrossKeysValues(
            model.vision_model, None, layers, model.config.text_config.num_attention_heads
        )
        pixels = _example_pixels(loaded, loaded.processor.image_processor)
        return export_bert_decoder_graphs(
            image_graph, BertDecoderStep(decoder), pixels, directory, opset=opset
        )

    def reference_pixel_values(self, loaded: Loaded, images: Sequence[Image.Image]) -> np.ndarray:
        return loaded.processor.image_processor(images=list(images), return_tensors="np").pixel_values

    def _inputs(self, loaded: Loaded, images, prompt):
        import torch

        pixel_values = torch.from_numpy(self.reference_pixel_values(loaded, images))
        if not prompt:
            return {"pixel_values": pixel_values}, 1
        text = loaded.tokenizer([prompt] * len(images), return_tensors="pt")
        inputs = {
            "pixel_values": pixel_values,
            "input_ids": text["input_ids"],
            "attention_mask": text["attention_mask"],
        }
        return inputs, text["input_ids"].shape[1] - 1  # generate drops the trailing [SEP]

    def reference(self, loaded, images, *, prompt, num_beams, max_length):
        import torch

        inputs, echoed = self._inputs(loaded, images, prompt)
        with torch.inference_mode():
            generated = loaded.model.generate(**inputs, num_beams=num_beams, max_length=max_length)
        texts = loaded.tokenizer.batch_decode(generated[:, echoed:], skip_special_tokens=True)
        return generated.tolist(), [text.strip() for text in texts]

    def teacher_forced_log_probs(self, loaded, images, *, prompt, rows):
        import torch

        pixel_values = torch.from_numpy(self.reference_pixel_values(loaded, images))
        with torch.inference_mode():
            image_embeds = loaded.model.vision_model(pixel_values=pixel_values)[0]
            logits = loaded.model.text_decoder(
                input_ids=torch.tensor(rows), encoder_hidden_states=image_embeds, use_cache=False
            ).logits
            return torch.log_softmax(logits.float(), dim=-1).numpy()


EXPORTERS = {"vit-bert": VitBertExporter, "blip": BlipExporter}
