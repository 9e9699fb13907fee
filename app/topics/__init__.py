"""Topic administration: the TopicService, topic-config specs and their errors."""

from app.topics.configs import TOPIC_CONFIGS, ConfigSpec, log_config_for
from app.topics.errors import (
    InvalidConfigError,
    InvalidPartitionsError,
    InvalidReplicationFactorError,
    InvalidTopicNameError,
    TopicExistsError,
)
from app.topics.service import PartitionInfo, TopicConfigs, TopicInfo, TopicService, validate_topic_name

__all__ = [
    "TOPIC_CONFIGS",
    "ConfigSpec",
    "InvalidConfigError",
    "InvalidPartitionsError",
    "InvalidReplicationFactorError",
    "InvalidTopicNameError",
    "PartitionInfo",
    "TopicConfigs",
    "TopicExistsError",
    "TopicInfo",
    "TopicService",
    "log_config_for",
    "validate_topic_name",
]
