"""A tiny transformers language model (GPT-2 built from a config: nothing is downloaded) trained by the Hugging
Face Trainer, which calls it with keyword arguments only: model(input_ids=..., attention_mask=..., labels=...)."""
import torch
from torch.utils.data import Dataset
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

VOCAB = 2048  # token ids up to 2047: a batch of ids is not an unnormalized input


class Tokens(Dataset):
    def __len__(self):
        return 32

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        ids = torch.randint(0, VOCAB, (12,), generator=g)
        return {"input_ids": ids, "attention_mask": torch.ones(12, dtype=torch.long), "labels": ids}


if __name__ == "__main__":
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=VOCAB, n_positions=16, n_embd=16, n_layer=1, n_head=2, bos_token_id=0,
                        eos_token_id=0, loss_type="ForCausalLM")
    args = TrainingArguments(output_dir="hf_out", per_device_train_batch_size=4, num_train_epochs=1, report_to=[],
                             save_strategy="no", use_cpu=True, logging_steps=1, disable_tqdm=True)
    Trainer(model=GPT2LMHeadModel(config), args=args, train_dataset=Tokens()).train()
