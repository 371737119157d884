"""Models: input encoding + recurrent layers + head, one per input/output pattern.

=========================  ==========================  ============================
registry name              class                       pattern
=========================  ==========================  ============================
``classifier``             :class:`SequenceClassifier`  many-to-one
``tagger``                 :class:`SequenceTagger`      synchronised many-to-many
``language_model``         :class:`LanguageModel`       synchronised many-to-many
``seq2seq``                :class:`Seq2Seq`             many-to-many (encoder–decoder)
``conditional_generator``  :class:`ConditionalGenerator`  one-to-many
``forecaster``             :class:`Forecaster`          many-to-one regression
=========================  ==========================  ============================

Every model is built from a frozen config dataclass (``MODELS.get(name).Config``)
whose recurrent stacks are :class:`RecurrentSpec` s, so any registered cell works
in any model; :mod:`rnnkit.config` turns configs into plain dicts and back. See
``docs/models.md``.
"""

from rnnkit.models import baselines
from rnnkit.models.attention import BahdanauAttention, LuongAttention
from rnnkit.models.baselines import BASELINES, moving_average, persistence, seasonal_naive
from rnnkit.models.classifier import ClassifierConfig, ConvFrontEnd, SequenceClassifier
from rnnkit.models.conditional import ConditionalGenerator, ConditionalGeneratorConfig
from rnnkit.models.decoder import EncoderMemory, RNNDecoder
from rnnkit.models.decoding import beam_search, greedy_search, sample_next_token
from rnnkit.models.forecaster import Forecaster, ForecasterConfig
from rnnkit.models.heads import MLP
from rnnkit.models.inputs import InputEncoder, InputSpec
from rnnkit.models.pooling import TemporalPooling
from rnnkit.models.recurrent import LAYERS, RecurrentSpec, build_recurrent, register_layer
from rnnkit.models.registry import MODELS, build_model, register_model
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
from rnnkit.models.states import Bridge
from rnnkit.models.tagger import LanguageModel, LanguageModelConfig, SequenceTagger, TaggerConfig

__all__ = [
    "BASELINES",
    "LAYERS",
    "MLP",
    "MODELS",
    "BahdanauAttention",
    "Bridge",
    "ClassifierConfig",
    "ConditionalGenerator",
    "ConditionalGeneratorConfig",
    "ConvFrontEnd",
    "EncoderMemory",
    "Forecaster",
    "ForecasterConfig",
    "InputEncoder",
    "InputSpec",
    "LanguageModel",
    "LanguageModelConfig",
    "LuongAttention",
    "RNNDecoder",
    "RecurrentSpec",
    "Seq2Seq",
    "Seq2SeqConfig",
    "SequenceClassifier",
    "SequenceTagger",
    "TaggerConfig",
    "TemporalPooling",
    "baselines",
    "beam_search",
    "build_model",
    "build_recurrent",
    "greedy_search",
    "moving_average",
    "persistence",
    "register_layer",
    "register_model",
    "sample_next_token",
    "seasonal_naive",
]
