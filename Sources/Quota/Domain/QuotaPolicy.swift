/// What the service's operator configures: the default limits, the price table and the currency.
public struct QuotaPolicy: Sendable, Hashable {
  public var defaults: QuotaDefaults
  public var prices: PriceTable
  public var currency: Currency

  public init(defaults: QuotaDefaults = .seed, prices: PriceTable = PriceTable(), currency: Currency = .usd) {
    self.defaults = defaults
    self.prices = prices
    self.currency = currency
  }
}
