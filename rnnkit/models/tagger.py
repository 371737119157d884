"""Synchronised many-to-many: a prediction at every step.

* :class:`SequenceTagger` — a label per step (part-of-speech tags, frame labels);
* :class:`LanguageModel` — the next token at every step (char-rnn, word LMs), with
  weight tying and generation that carries the recurrent state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from rnnkit.cells.base import State
from rnnkit.config import ConfigMixin, check_choice, check_positive, check_probability
from rnnkit.models.decoding import check_sampling, eval_mode, sample_next_token
from rnnkit.models.heads import MLP, check_head
from rnnkit.models.init import init_forget_bias_, init_output_
from rnnkit.models.inputs import InputEncoder, InputSpec
from rnnkit.models.recurrent import RecurrentSpec, build_recurrent
from rnnkit.models.registry import register_model
from rnnkit.models.states import probe_stack


@dataclass(frozen=True)
class TaggerConfig(ConfigMixin):
    """Config of :class:`SequenceTagger`.

    Attributes:
        input: how inputs are encoded (:class:`InputSpec`).
        num_classes: ``C``, logits per step.
        rnn: the recurrent stack (may be bidirectional: a tagger sees the whole input).
        head_hidden: hidden layer sizes of the per-step MLP head.
        head_dropout: dropout before each head layer.
        head_activation: activation between head layers.
    """

    input: InputSpec = field(
        default_factory=lambda: InputSpec("embedding", vocab_size=1000, embedding_dim=64)
    )
    num_classes: int = 2
    rnn: RecurrentSpec = field(default_factory=RecurrentSpec)
    head_hidden: tuple[int, ...] = ()
    head_dropout: float = 0.0
    head_activation: str = "relu"

    def __post_init__(self) -> None:
        check_positive("TaggerConfig", num_classes=self.num_classes)
        check_head("TaggerConfig", self.head_hidden, self.head_dropout, self.head_activation)


class PerStepModel(nn.Module):
    """What the tagger and the language model share: ``InputEncoder → recurrent stack``,
    the state carried in and out, and a readout of every step's output (a subclass's
    :meth:`readout`). Called as ``model(inputs, lengths, state) -> (logits, state)``.

    A subclass's config has ``input`` (:class:`InputSpec`) and ``rnn``
    (:class:`RecurrentSpec`); it builds its readout after this constructor.
    """

    def __init__(self, config: TaggerConfig | LanguageModelConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = InputEncoder(config.input)
        self.rnn = build_recurrent(config.rnn, self.encoder.output_size)

    def forward(
        self,
        inputs: Tensor,
        lengths: Tensor | Sequence[int] | None = None,
        state: State | None = None,
    ) -> tuple[Tensor, State]:
        x = self.encoder(inputs)  # (B, T, E)
        out, state = self.rnn(x, state, lengths=lengths)  # (B, T, H*D)
        return self.readout(out), state

    def readout(self, out: Tensor) -> Tensor:
        """Every step's logits from the recurrent output ``(B, T, H*D)``."""
        raise NotImplementedError


@register_model("tagger", description="synchronised many-to-many: a label per step")
class SequenceTagger(PerStepModel):
    """Per-step logits: ``InputEncoder → recurrent stack → MLP`` at every step.

    Shape:
        ``inputs`` ``(B, T)`` ids or ``(B, T, F)`` features, ``lengths`` ``(B,)`` or
        ``None``, ``state`` leaves ``(L*D, B, H)`` or ``None`` →
        ``(logits (B, T, C), final state)``. Padded steps still get logits (from a
        zero recurrent output); mask them out of the loss.

    Example::

        >>> model = SequenceTagger(TaggerConfig(num_classes=17))
        >>> logits, state = model(torch.randint(1, 1000, (4, 9)), torch.tensor([9, 5, 2, 7]))
        >>> logits.shape
        torch.Size([4, 9, 17])
    """

    Config = TaggerConfig

    def __init__(self, config: TaggerConfig) -> None:
        super().__init__(config)
        rnn_size = probe_stack(self.rnn, self.encoder.output_size).output_size
        self.head = MLP.from_config(rnn_size, config.num_classes, config)
        init_forget_bias_(self)

    def readout(self, out: Tensor) -> Tensor:
        return self.head(out)  # (B, T, C)


LM_INPUTS = ("embedding", "one_hot")


@dataclass(frozen=True)
class LanguageModelConfig(ConfigMixin):
    """Config of :class:`LanguageModel`.

    Attributes:
        vocab_size: ``V`` (characters or words).
        input_kind: ``"embedding"`` or ``"one_hot"`` (the course's "hello" toy).
        embedding_dim: ``E`` (with ``embedding``).
        rnn: the recurrent stack; must be unidirectional (a bidirectional model would
            see the token it is asked to predict).
        dropout: on the embeddings and on the recurrent outputs (Zaremba et al. 2014).
        tie_weights: share the output layer's weights with the embedding (Press &
            Wolf 2017; Inan et al. 2017): fewer parameters, usually lower perplexity.
            When the recurrent output size differs from ``E``, a linear projection to
            ``E`` is inserted before the tied output layer.
        padding_idx: a padding token id (its embedding stays zero), or ``None``.
        embedding_dropout: drop whole rows of the embedding matrix (word types) per batch,
            scaled (AWD-LSTM; :attr:`InputSpec.embedding_dropout`); ``embedding`` only.
        word_dropout: replace input tokens by ``unk_idx`` (else ``padding_idx``) with
            this probability in training (:attr:`InputSpec.word_dropout`).
        unk_idx: the unknown-token id, filled from the data's vocabulary, or ``None``.
    """

    vocab_size: int = 256
    input_kind: str = "embedding"
    embedding_dim: int = 64
    rnn: RecurrentSpec = field(default_factory=RecurrentSpec)
    dropout: float = 0.0
    tie_weights: bool = False
    padding_idx: int | None = None
    embedding_dropout: float = 0.0
    word_dropout: float = 0.0
    unk_idx: int | None = None

    def __post_init__(self) -> None:
        owner = "LanguageModelConfig"
        check_positive(owner, vocab_size=self.vocab_size, embedding_dim=self.embedding_dim)
        check_choice(owner, "input_kind", self.input_kind, LM_INPUTS)
        check_probability(owner, dropout=self.dropout)
        if self.rnn.bidirectional:
            raise ValueError(
                f"{owner}: a language model must be unidirectional (rnn.bidirectional=False): "
                "the backward direction would read the very token it has to predict"
            )
        if self.tie_weights and self.input_kind != "embedding":
            raise ValueError(
                f"{owner}: tie_weights=True needs input_kind='embedding' (there is no "
                f"embedding matrix to share with input_kind={self.input_kind!r})"
            )
        _ = self.input  # the input's own checks (embedding and word dropout)

    @property
    def input(self) -> InputSpec:
        """The :class:`InputSpec` of the token inputs."""
        embedding = self.input_kind == "embedding"
        return InputSpec(
            self.input_kind,
            vocab_size=self.vocab_size,
            embedding_dim=self.embedding_dim if embedding else None,
            padding_idx=self.padding_idx if embedding else None,
            dropout=self.dropout,
            embedding_dropout=self.embedding_dropout,
            word_dropout=self.word_dropout,
            unk_idx=self.unk_idx,
        )


@register_model("language_model", description="next-token logits at every step; generation")
class LanguageModel(PerStepModel):
    r"""Next-token prediction at every step: :math:`p(x_{t+1} \mid x_{\le t})`.

    ``InputEncoder → recurrent stack → dropout → [projection] → Linear(V)``; the
    target of step ``t`` is the input of step ``t + 1`` (shift the batch by one and
    use ``cross_entropy`` on the logits; bits per character = loss / ln 2).

    Shape:
        ``inputs`` ``(B, T)`` token ids, ``lengths`` ``(B,)`` or ``None``, ``state``
        leaves ``(L, B, H)`` or ``None`` → ``(logits (B, T, V), final state)``.
        Passing the returned state to the next call continues the text (truncated
        BPTT: ``detach`` it between batches when training).

    Example::

        >>> lm = LanguageModel(LanguageModelConfig(vocab_size=65, rnn=RecurrentSpec("lstm", 128)))
        >>> logits, state = lm(torch.randint(65, (2, 50)))
        >>> lm.generate(torch.tensor([[7, 3]]), max_new_tokens=20, temperature=0.8).shape
        torch.Size([1, 22])
    """

    Config = LanguageModelConfig

    def __init__(self, config: LanguageModelConfig) -> None:
        super().__init__(config)
        size = probe_stack(self.rnn, self.encoder.output_size).output_size
        self.dropout = nn.Dropout(config.dropout)
        self.projection: nn.Linear | None = None
        if config.tie_weights and size != config.embedding_dim:
            self.projection = nn.Linear(size, config.embedding_dim)
            size = config.embedding_dim
        self.output = nn.Linear(size, config.vocab_size)
        init_output_(self.output)
        if config.tie_weights:
            assert self.encoder.embedding is not None
            self.output.weight = self.encoder.embedding.weight  # (V, E), shared
        init_forget_bias_(self)

    def readout(self, out: Tensor) -> Tensor:
        out = self.dropout(out)  # (B, T, H)
        if self.projection is not None:
            out = self.projection(out)  # (B, T, E)
        return self.output(out)  # (B, T, V)

    @torch.no_grad()
    def generate(
        self,
        prompt: Tensor,
        max_new_tokens: int,
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
        state: State | None = None,
    ) -> Tensor:
        """Continue ``prompt`` by sampling one token at a time.

        The prompt runs through the model once; after that each new token is fed on
        its own with the carried recurrent state, so a step costs the same however
        long the text already is (no re-reading of the prefix). The model is in eval
        mode for the call (no dropout) and returns to its previous mode afterwards.

        Arguments:
            prompt: ``(B, T0)`` token ids, ``T0 >= 1``.
            max_new_tokens: tokens to add.
            temperature: ``> 0``; lower is more conservative.
            top_k: sample among the ``k`` most likely tokens (``1`` = greedy).
            generator: for reproducible samples.
            state: a state to continue from (e.g. a previous call's), or ``None``.

        Returns:
            ``(B, T0 + max_new_tokens)``: the prompt followed by the new tokens.
        """
        check_sampling(temperature, top_k)
        if prompt.dim() != 2 or prompt.shape[1] < 1:
            raise ValueError(
                f"LanguageModel.generate: expected a prompt of shape (B, T0) with T0 >= 1, "
                f"got shape {tuple(prompt.shape)}"
            )
        if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
            raise ValueError(
                f"LanguageModel.generate: max_new_tokens must be an integer >= 0, "
                f"got {max_new_tokens!r}"
            )
        tokens = [prompt]
        with eval_mode(self):
            logits, state = self(prompt, state=state)  # (B, T0, V)
            for i in range(max_new_tokens):
                next_token = sample_next_token(
                    logits[:, -1], temperature=temperature, top_k=top_k, generator=generator
                ).unsqueeze(1)  # (B, 1)
                tokens.append(next_token)
                if i + 1 < max_new_tokens:
                    logits, state = self(next_token, state=state)  # (B, 1, V)
        return torch.cat(tokens, dim=1)  # (B, T0 + max_new_tokens)
