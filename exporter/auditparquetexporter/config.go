package auditparquetexporter

import (
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/otelaudit/otelcol-audit/internal/confstrict"
)

// Config of the auditparquet exporter.
type Config struct {
	// Trail names the audittrail extension the spans are appended to.
	Trail component.ID `mapstructure:"trail"`

	TimeoutConfig exporterhelper.TimeoutConfig                             `mapstructure:",squash"`
	QueueConfig   configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	BackOffConfig configretry.BackOffConfig                                `mapstructure:"retry_on_failure"`
}

var _ component.Config = (*Config)(nil)

// movedToTrail are the keys the audittrail extension took over from this exporter.
var movedToTrail = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"directory", "writer_id", "compression", "row_group_rows", "max_file_age",
		"max_file_rows", "max_file_bytes", "signing", "compaction", "retention"} {
		m[k] = fmt.Sprintf("the audittrail extension owns the trail; set %s under extensions::audittrail and write trail: audittrail here (see the audittrail README)", k)
	}
	return m
}()

// Unmarshal decodes the configuration, naming where a key of the trail went.
func (c *Config) Unmarshal(conf *confmap.Conf) error {
	if err := confstrict.RejectMoved(conf, movedToTrail); err != nil {
		return err
	}
	return conf.Unmarshal(c)
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Trail.Type().String() == "" {
		return fmt.Errorf("trail must name an audittrail extension, e.g. trail: audittrail")
	}
	return nil
}
