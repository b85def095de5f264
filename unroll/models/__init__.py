"""Ready-made circuits: every recurrent architecture of the RNN curriculum.

Built only with the public circuit API (unroll's own dogfood), so each can be printed,
rendered, unrolled, differentiated and gradchecked like a hand-written circuit.

- Goodfellow et al., chapter 10 (book names U, W, V, b, c): :func:`elman` (fig. 10.3),
  :func:`jordan` (10.4), :func:`many_to_one` (10.5), :func:`teacher_forcing` (10.6),
  :func:`conditioned` (10.9, 10.10), :func:`bidirectional` (10.11), :func:`encoder_decoder`
  (10.12).
- PyTorch's layout and names: :func:`rnn`, :func:`lstm` (with every variant of "LSTM: A Search
  Space Odyssey"), :func:`gru`, any depth, bidirectional; :func:`stacked` for mixed cells.
- :func:`generate`: one-to-many sampling from a trained model.

See ``docs/models.md`` for the equations of each.
"""
from .cells import LSTM_VARIANTS, gru_cell, lstm_cell, rnn_cell, torch_init
from .generate import generate
from .layers import gru, lstm, rnn, stacked, torch_names
from .textbook import (EncoderDecoder, bidirectional, conditioned, elman, encoder_decoder,
                       jordan, many_to_one, teacher_forcing)
from .attention import AttentionSeq2Seq, attention_seq2seq

__all__ = ["elman", "jordan", "many_to_one", "teacher_forcing", "conditioned", "bidirectional",
           "encoder_decoder", "EncoderDecoder", "attention_seq2seq", "AttentionSeq2Seq", "rnn", "lstm", "gru", "stacked", "generate",
           "rnn_cell", "lstm_cell", "gru_cell", "LSTM_VARIANTS", "torch_names", "torch_init"]
