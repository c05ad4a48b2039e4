export * from './prices';
export * from './metering';
export * from './exporter';
export * from './file-exporter';
export * from './invoices';
