package sandbox

// Request structs of the SOAP operations, per the 2017 WSDL plus the newer
// encodeParameterData. Every child element is qualified with the Peoplevox
// namespace (elementFormDefault="qualified"): an unqualified child is
// ignored, as the real XmlSerializer ignores it.

type authenticateReq struct {
	ClientID string `xml:"http://www.peoplevox.net/ clientId"`
	Username string `xml:"http://www.peoplevox.net/ username"`
	Password string `xml:"http://www.peoplevox.net/ password"`
}

type getRequest struct {
	TemplateName string `xml:"http://www.peoplevox.net/ TemplateName"`
	PageNo       int    `xml:"http://www.peoplevox.net/ PageNo"`
	ItemsPerPage int    `xml:"http://www.peoplevox.net/ ItemsPerPage"`
	SearchClause string `xml:"http://www.peoplevox.net/ SearchClause"`
}

type getDataReq struct {
	Req getRequest `xml:"http://www.peoplevox.net/ getRequest"`
}

type getReportRequest struct {
	TemplateName string `xml:"http://www.peoplevox.net/ TemplateName"`
	PageNo       int    `xml:"http://www.peoplevox.net/ PageNo"`
	ItemsPerPage int    `xml:"http://www.peoplevox.net/ ItemsPerPage"`
	SearchClause string `xml:"http://www.peoplevox.net/ SearchClause"`
	FilterClause string `xml:"http://www.peoplevox.net/ FilterClause"`
	OrderBy      string `xml:"http://www.peoplevox.net/ OrderBy"`
	Columns      string `xml:"http://www.peoplevox.net/ Columns"`
}

type getReportDataReq struct {
	Req getReportRequest `xml:"http://www.peoplevox.net/ getReportRequest"`
}

type templateNameReq struct {
	TemplateName string `xml:"http://www.peoplevox.net/ templateName"`
}

type saveRequest struct {
	TemplateName string `xml:"http://www.peoplevox.net/ TemplateName"`
	CsvData      string `xml:"http://www.peoplevox.net/ CsvData"`
	Action       int    `xml:"http://www.peoplevox.net/ Action"`
}

type saveDataReq struct {
	Req saveRequest `xml:"http://www.peoplevox.net/ saveRequest"`
}

type subscribeReq struct {
	EventType   string `xml:"http://www.peoplevox.net/ eventType"`
	Filter      string `xml:"http://www.peoplevox.net/ filter"`
	CallbackURL string `xml:"http://www.peoplevox.net/ callbackUrl"`
	Encode      bool   `xml:"http://www.peoplevox.net/ encodeParameterData"`
}

type subscribePostReq struct {
	EventType  string `xml:"http://www.peoplevox.net/ eventType"`
	Filter     string `xml:"http://www.peoplevox.net/ filter"`
	PostURL    string `xml:"http://www.peoplevox.net/ postUrl"`
	PostParams string `xml:"http://www.peoplevox.net/ postParams"`
	Encode     bool   `xml:"http://www.peoplevox.net/ encodeParameterData"`
}

type unsubscribeReq struct {
	SubscriptionID int `xml:"http://www.peoplevox.net/ subscriptionId"`
}
